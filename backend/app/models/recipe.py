from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, only_on

if TYPE_CHECKING:
    from app.models.user import User


class Recipe(Base):
    __tablename__ = "recipe"
    __table_args__ = (
        # Serves the search's ILIKE '%keyword%' on PostgreSQL (a b-tree cannot: the pattern
        # starts with a wildcard). SQLite has no such index and scans (migration 0002).
        Index(
            "ix_recipe_label_trgm",
            "label",
            postgresql_using="gin",
            postgresql_ops={"label": "gin_trgm_ops"},
            info=only_on("postgresql"),
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(256))
    url: Mapped[str | None] = mapped_column(String(256), index=True)
    source: Mapped[str | None] = mapped_column(String(256))
    submitter_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )

    submitter: Mapped["User | None"] = relationship(back_populates="recipes", lazy="raise")
