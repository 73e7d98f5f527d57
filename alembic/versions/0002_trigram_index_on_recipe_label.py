"""trigram index on recipe.label, for substring search (PostgreSQL only)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 22:10:00

`GET /search/` matches `label ILIKE '%keyword%'`; no b-tree serves a pattern that starts with a
wildcard, so without this index a rare keyword reads the whole table. pg_trgm's GIN index
finds the candidate rows from the keyword's trigrams. SQLite has neither; it scans.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def on_postgresql() -> bool:
    # The migration context, not op.get_bind(): `alembic upgrade head --sql` has no connection.
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if not on_postgresql():
        return
    # A trusted extension since PostgreSQL 13: a database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_recipe_label_trgm",
        "recipe",
        ["label"],
        postgresql_using="gin",
        postgresql_ops={"label": "gin_trgm_ops"},
    )
    # The search orders by id with a LIMIT, so the planner chooses between walking the primary
    # key until enough labels match (fast for a common word) and this index (fast for a rare
    # one) by its estimate of how many labels match. The default sample (100 histogram
    # buckets) often misjudged a common word as rare, and the search became many times slower;
    # 1000 buckets judge it right (docs/performance.md).
    op.execute("ALTER TABLE recipe ALTER COLUMN label SET STATISTICS 1000")


def downgrade() -> None:
    if not on_postgresql():
        return
    op.execute("ALTER TABLE recipe ALTER COLUMN label SET STATISTICS -1")
    op.drop_index("ix_recipe_label_trgm", table_name="recipe")
    # The extension stays: other objects in the database may use it.
