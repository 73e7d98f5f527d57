from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UtcDateTime


class LoginFailure(Base):
    """One failed login, kept for LOGIN_FAILURE_WINDOW_SECONDS: the rate limit counts these, so
    it holds across every worker and replica that shares the database."""

    __tablename__ = "login_failure"

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(256), index=True)  # the email tried, lower-cased
    client: Mapped[str] = mapped_column(String(64), index=True)  # the client's address
    failed_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
