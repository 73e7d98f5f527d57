from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UtcDateTime


class Seed(Base):
    """A record that the starter data went in: the seed runs once per database, so what users
    later delete or rename stays that way."""

    __tablename__ = "seed"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    superuser_email: Mapped[str] = mapped_column(String(256))
    seeded_at: Mapped[datetime] = mapped_column(UtcDateTime)
