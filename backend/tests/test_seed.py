"""The seed (superuser and tutorial recipes): once per database, complete, all or nothing."""

from collections.abc import Iterator, Mapping, Sequence

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, delete, func, select, update
from sqlalchemy.exc import DataError, StatementError

from app.core.config import Settings
from app.core.security import verify_password
from app.db.seed import seed_initial_data
from app.db.session import create_db_engine
from app.initial_data import MissingSuperuserPassword, init
from app.models import Recipe, Seed, User
from app.recipe_data import RECIPES
from bench.databases import throwaway_database
from tests.utils.migrations import downgrade, migrate
from tests.utils.settings import settings_for

ADMIN = "admin@recipeapi.com"
TUTORIAL = [
    (
        "Chicken Vesuvio",
        "Serious Eats",
        "http://www.seriouseats.com/recipes/2011/12/chicken-vesuvio-recipe.html",
    ),
    ("Chicken Paprikash", "No Recipes", "http://norecipes.com/recipe/chicken-paprikash/"),
    (
        "Cauliflower and Tofu Curry Recipe",
        "Serious Eats",
        "http://www.seriouseats.com/recipes/2011/02/cauliflower-and-tofu-curry-recipe.html",
    ),
]
users_table = User.metadata.tables["user"]
recipes_table = Recipe.metadata.tables["recipe"]
seed_table = Seed.metadata.tables["seed"]


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(settings, pooled=False)
    yield engine
    engine.dispose()


def run_seed(
    engine: Engine,
    recipes: Sequence[Mapping[str, str]] = RECIPES,
    email: str = ADMIN,
    password_hash: str | None = None,
) -> int:
    """As `app.initial_data` runs it: one transaction, committed only if all of it worked."""
    with engine.begin() as connection:
        return seed_initial_data(connection, email, lambda: password_hash, recipes)


def users(engine: Engine) -> list[tuple[str, bool]]:
    query = select(users_table.c.email, users_table.c.is_superuser).order_by(users_table.c.id)
    with engine.connect() as connection:
        return [(row.email, row.is_superuser) for row in connection.execute(query)]


def recipes(engine: Engine) -> list[tuple[str, str | None, str | None, str | None]]:
    """(label, source, url, submitter email) of every recipe, in id order."""
    query = (
        select(
            recipes_table.c.label, recipes_table.c.source, recipes_table.c.url, users_table.c.email
        )
        .outerjoin(users_table, recipes_table.c.submitter_id == users_table.c.id)
        .order_by(recipes_table.c.id)
    )
    with engine.connect() as connection:
        return [(row[0], row[1], row[2], row[3]) for row in connection.execute(query)]


def count_rows(engine: Engine) -> tuple[int, int, int]:
    """Users, recipes and seed records."""
    with engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (users_table, recipes_table, seed_table)
        )


def test_seed_creates_superuser_and_tutorial_recipes(engine: Engine) -> None:
    added = run_seed(engine)

    assert added == 4
    assert users(engine) == [(ADMIN, True)]
    assert recipes(engine) == [(label, source, url, ADMIN) for label, source, url in TUTORIAL]
    assert count_rows(engine) == (1, 3, 1)


def test_tutorial_recipe_data_is_the_spec() -> None:
    assert [(r["label"], r["source"], r["url"]) for r in RECIPES] == TUTORIAL


def test_seed_runs_once_and_then_adds_nothing(engine: Engine) -> None:
    run_seed(engine)
    first = (users(engine), recipes(engine))

    added = run_seed(engine)

    assert added == 0
    assert (users(engine), recipes(engine)) == first


def test_starter_recipes_deleted_or_renamed_stay_so_after_the_next_seed(engine: Engine) -> None:
    run_seed(engine)
    with engine.begin() as connection:
        connection.execute(delete(recipes_table).where(recipes_table.c.label == TUTORIAL[0][0]))
        connection.execute(
            update(recipes_table)
            .where(recipes_table.c.label == TUTORIAL[1][0])
            .values(label="Chicken Paprikash (my version)")
        )
    before = recipes(engine)

    added = run_seed(engine)

    assert added == 0
    assert recipes(engine) == before
    assert [label for label, *_ in before] == [
        "Chicken Paprikash (my version)",
        TUTORIAL[2][0],
    ]


def test_changed_first_superuser_is_reported_and_not_acted_on(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    run_seed(engine)

    added = run_seed(engine, email="New.Boss@example.com")

    assert added == 0
    assert users(engine) == [(ADMIN, True)]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("new.boss@example.com" in w and ADMIN in w for w in warnings), warnings


def test_seed_gives_the_superuser_its_password(engine: Engine) -> None:
    from app.core.security import hash_password

    run_seed(engine, password_hash=hash_password("first superuser password"))

    with engine.connect() as connection:
        stored = connection.execute(select(users_table.c.hashed_password)).scalar_one()
    assert stored is not None
    assert stored != "first superuser password"
    assert verify_password("first superuser password", stored)
    assert not verify_password("another password", stored)


def test_seed_without_a_password_creates_a_superuser_that_cannot_log_in(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    run_seed(engine, password_hash=None)

    with engine.connect() as connection:
        assert connection.execute(select(users_table.c.hashed_password)).scalar_one() is None
    assert any("FIRST_SUPERUSER_PASSWORD is not set" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "bad_recipe",
    [{"label": "No url or source"}, {"label": None, "source": "Nowhere", "url": "http://x.org/"}],
    ids=["missing-key", "null-label"],
)
def test_seed_failing_half_way_leaves_no_rows_and_no_record(
    engine: Engine, bad_recipe: dict[str, str]
) -> None:
    """The superuser is inserted before the recipes fail: all of it is rolled back."""
    with pytest.raises(StatementError):
        run_seed(engine, [RECIPES[0], bad_recipe, RECIPES[2]])

    assert count_rows(engine) == (0, 0, 0)
    assert run_seed(engine) == 4
    assert count_rows(engine) == (1, 3, 1)


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_seed_failing_on_a_too_long_label_leaves_no_rows_on_a_server(
    request: pytest.FixtureRequest, server: str
) -> None:
    """PostgreSQL and MariaDB (in the strict mode the app sets) enforce varchar(256), SQLite does
    not, so the database itself refuses."""
    admin = "postgres_admin_url" if server == "postgresql" else "mysql_admin_url"
    with throwaway_database(request.getfixturevalue(admin)) as url:
        migrate(url)
        engine = create_engine(url)
        try:
            too_long = {**RECIPES[1], "label": "x" * 257}
            with pytest.raises(DataError):
                run_seed(engine, [RECIPES[0], too_long])

            assert count_rows(engine) == (0, 0, 0)
            assert run_seed(engine) == 4
            assert count_rows(engine) == (1, 3, 1)
        finally:
            engine.dispose()


def test_a_database_seeded_before_the_seed_record_existed_is_never_seeded_again(
    database_url: str, engine: Engine
) -> None:
    """Migration 0003 records the seed of a database that already has users or recipes."""
    downgrade(database_url, "base")
    migrate(database_url, "0002")
    with engine.begin() as connection:
        old_admin = connection.execute(
            users_table.insert().values(email=ADMIN, is_superuser=True).returning(users_table.c.id)
        ).scalar_one()
        connection.execute(
            recipes_table.insert().values(label="Chicken Paprikash", submitter_id=old_admin)
        )

    migrate(database_url)

    assert run_seed(engine) == 0
    assert count_rows(engine) == (1, 1, 1)


def test_initial_data_init_seeds_the_configured_superuser_once(database_url: str) -> None:
    settings = settings_for(database_url, FIRST_SUPERUSER="Chef@Example.com")

    first = init(settings)
    second = init(settings)

    assert (first, second) == (4, 0)
    engine = create_engine(database_url)
    try:
        assert users(engine) == [("chef@example.com", True)]
        assert [row[:3] for row in recipes(engine)] == TUTORIAL
        assert {row[3] for row in recipes(engine)} == {"chef@example.com"}
    finally:
        engine.dispose()


def test_production_creates_no_superuser_without_a_password(database_url: str) -> None:
    production = settings_for(database_url, ENVIRONMENT="production", SECRET_KEY="k" * 32)

    with pytest.raises(MissingSuperuserPassword):
        init(production)

    engine = create_engine(database_url)
    try:
        assert count_rows(engine) == (0, 0, 0)
    finally:
        engine.dispose()
    with_password = production.model_copy(update={"FIRST_SUPERUSER_PASSWORD": SecretStr("pw!")})
    assert init(with_password) == 4
