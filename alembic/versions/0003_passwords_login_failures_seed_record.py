"""passwords, login failures, seed record

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 21:07:06

- `user.hashed_password`: users created before it have none and cannot log in until a
  superuser sets one.
- `login_failure`: the failed logins the rate limit counts, shared by every worker and replica.
- `seed`: the record that the starter data went in. A database seeded before this revision has
  users or recipes: it is recorded as seeded here, so that the seed never runs on it again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import mysql_table_options
from app.db.migrations import give_up_waiting_for_locks

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    options = mysql_table_options(op.get_context().dialect)
    give_up_waiting_for_locks()
    op.add_column("user", sa.Column("hashed_password", sa.String(length=256), nullable=True))
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=256), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failure")),
        **options,
    )
    op.create_index(op.f("ix_login_failure_account"), "login_failure", ["account"])
    op.create_index(op.f("ix_login_failure_client"), "login_failure", ["client"])
    op.create_index(op.f("ix_login_failure_failed_at"), "login_failure", ["failed_at"])
    seed = op.create_table(
        "seed",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("superuser_email", sa.String(length=256), nullable=False),
        sa.Column("seeded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_seed")),
        **options,
    )
    user = sa.table("user", sa.column("id"), sa.column("email"), sa.column("is_superuser"))
    recipe = sa.table("recipe", sa.column("id"))
    first_superuser = (
        sa.select(user.c.email)
        .where(user.c.is_superuser == sa.true())
        .order_by(user.c.id)
        .limit(1)
        .scalar_subquery()
    )
    already_seeded = sa.select(
        sa.literal("initial"),
        sa.func.coalesce(first_superuser, ""),
        sa.func.current_timestamp(),
    ).where(sa.or_(sa.exists(sa.select(user.c.id)), sa.exists(sa.select(recipe.c.id))))
    op.execute(seed.insert().from_select(["name", "superuser_email", "seeded_at"], already_seeded))


def downgrade() -> None:
    op.drop_table("seed")
    op.drop_index(op.f("ix_login_failure_failed_at"), table_name="login_failure")
    op.drop_index(op.f("ix_login_failure_client"), table_name="login_failure")
    op.drop_index(op.f("ix_login_failure_account"), table_name="login_failure")
    op.drop_table("login_failure")
    with op.batch_alter_table("user") as batch_op:
        batch_op.drop_column("hashed_password")
