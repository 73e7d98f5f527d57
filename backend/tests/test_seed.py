"""The seed (superuser and tutorial recipes): complete, idempotent, and all or nothing."""

from collections.abc import Iterator, Mapping, Sequence

import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import DataError, IntegrityError

from app.core.config import Settings
from app.db.seed import seed_initial_data
from app.db.session import create_db_engine, create_session_factory
from app.initial_data import init
from app.models import Recipe, User
from app.recipe_data import RECIPES
from bench.databases import throwaway_database
from tests.utils.migrations import migrate

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


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(settings, pooled=False)
    yield engine
    engine.dispose()


def run_seed(
    engine: Engine,
    recipes: Sequence[Mapping[str, str]] = RECIPES,
    email: str = ADMIN,
) -> int:
    """As `app.initial_data` runs it: one transaction, committed only if all of it worked."""
    with create_session_factory(engine).begin() as session:
        return seed_initial_data(session, email, recipes)


def users(engine: Engine) -> list[tuple[str, bool]]:
    with create_session_factory(engine)() as session:
        return [(u.email, u.is_superuser) for u in session.scalars(select(User).order_by(User.id))]


def recipes(engine: Engine) -> list[tuple[str, str | None, str | None, str | None]]:
    """(label, source, url, submitter email) of every recipe, in id order."""
    query = (
        select(Recipe.label, Recipe.source, Recipe.url, User.email)
        .outerjoin(User, Recipe.submitter_id == User.id)
        .order_by(Recipe.id)
    )
    with create_session_factory(engine)() as session:
        return [(row[0], row[1], row[2], row[3]) for row in session.execute(query)]


def count_rows(engine: Engine) -> tuple[int, int]:
    with create_session_factory(engine)() as session:
        user_count = session.scalar(select(func.count()).select_from(User))
        recipe_count = session.scalar(select(func.count()).select_from(Recipe))
    return (user_count or 0, recipe_count or 0)


def test_seed_creates_superuser_and_tutorial_recipes(engine: Engine) -> None:
    added = run_seed(engine)

    assert added == 4
    assert users(engine) == [(ADMIN, True)]
    assert recipes(engine) == [(label, source, url, ADMIN) for label, source, url in TUTORIAL]


def test_tutorial_recipe_data_is_the_spec() -> None:
    assert [(r["label"], r["source"], r["url"]) for r in RECIPES] == TUTORIAL


def test_seed_twice_adds_nothing_the_second_time(engine: Engine) -> None:
    run_seed(engine)
    first = (users(engine), recipes(engine))

    added = run_seed(engine)

    assert added == 0
    assert (users(engine), recipes(engine)) == first
    assert count_rows(engine) == (1, 3)


def test_seed_completes_a_partial_seed(engine: Engine) -> None:
    run_seed(engine, RECIPES[:1])

    added = run_seed(engine)

    assert added == 2
    assert recipes(engine) == [(label, source, url, ADMIN) for label, source, url in TUTORIAL]


def test_seed_matches_superuser_email_case_insensitively(engine: Engine) -> None:
    run_seed(engine, email="Admin@RecipeAPI.com")

    added = run_seed(engine, email="admin@recipeapi.com")

    assert added == 0
    assert users(engine) == [(ADMIN, True)]


@pytest.mark.parametrize(
    ("bad_recipe", "error"),
    [
        ({"label": "No url or source"}, KeyError),
        ({"label": None, "source": "Nowhere", "url": "http://example.com/"}, IntegrityError),
    ],
    ids=["missing-key", "null-label"],
)
def test_seed_failing_half_way_leaves_no_rows(
    engine: Engine, bad_recipe: dict[str, str], error: type[Exception]
) -> None:
    """The superuser and the first recipe are flushed before the second fails: all rolled back."""
    with pytest.raises(error):
        run_seed(engine, [RECIPES[0], bad_recipe, RECIPES[2]])

    assert count_rows(engine) == (0, 0)
    assert run_seed(engine) == 4
    assert count_rows(engine) == (1, 3)


def test_seed_failing_on_a_too_long_label_leaves_no_rows_on_postgres(
    postgres_admin_url: str,
) -> None:
    """PostgreSQL enforces varchar(256) (SQLite does not), so the database itself refuses."""
    with throwaway_database(postgres_admin_url) as url:
        migrate(url)
        engine = create_engine(url)
        try:
            too_long = {**RECIPES[1], "label": "x" * 257}
            with pytest.raises(DataError):
                run_seed(engine, [RECIPES[0], too_long])

            assert count_rows(engine) == (0, 0)
            assert run_seed(engine) == 4
            assert count_rows(engine) == (1, 3)
        finally:
            engine.dispose()


def test_initial_data_init_seeds_the_configured_superuser_once(database_url: str) -> None:
    settings = Settings(
        DATABASE_URL=database_url, FIRST_SUPERUSER="Chef@Example.com", _env_file=None
    )

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
