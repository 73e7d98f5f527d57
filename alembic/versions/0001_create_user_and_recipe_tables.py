"""create user and recipe tables

Revision ID: 0001
Revises:
Create Date: 2026-11-24 21:07:57
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import mysql_table_options

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    options = mysql_table_options(op.get_context().dialect)
    op.create_table(
        "user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_name", sa.String(length=256), nullable=True),
        sa.Column("surname", sa.String(length=256), nullable=True),
        sa.Column("email", sa.String(length=256), nullable=False),
        sa.Column("is_superuser", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user")),
        sa.UniqueConstraint("email", name=op.f("uq_user_email")),
        **options,
    )
    op.create_table(
        "recipe",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=256), nullable=False),
        sa.Column("url", sa.String(length=256), nullable=True),
        sa.Column("source", sa.String(length=256), nullable=True),
        sa.Column("submitter_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["submitter_id"],
            ["user.id"],
            name=op.f("fk_recipe_submitter_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipe")),
        **options,
    )
    op.create_index(op.f("ix_recipe_submitter_id"), "recipe", ["submitter_id"])
    op.create_index(op.f("ix_recipe_url"), "recipe", ["url"])


def downgrade() -> None:
    # The indexes go with the table (MariaDB refuses to drop one a foreign key needs).
    op.drop_table("recipe")
    op.drop_table("user")
