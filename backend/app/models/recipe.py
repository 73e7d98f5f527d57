from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base

if TYPE_CHECKING:
    from app.models.user import User


class Recipe(Base):
    __tablename__ = "recipe"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(256))
    url: Mapped[str | None] = mapped_column(String(256), index=True)
    source: Mapped[str | None] = mapped_column(String(256))
    submitter_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )

    submitter: Mapped["User | None"] = relationship(back_populates="recipes", lazy="raise")
