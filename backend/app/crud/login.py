"""What a login needs from the database: the account's password hash, and the failures its
rate limit counts per account and per client address (in the database, so the limit holds
across every worker and replica)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, func, insert, select

from app.models import LoginFailure, User

user_table = User.metadata.tables[User.__tablename__]
failure_table = LoginFailure.metadata.tables[LoginFailure.__tablename__]

ACCOUNT = select(user_table.c.id, user_table.c.hashed_password).where(
    user_table.c.email == bindparam("account")
)
RECENT_FAILURES = select(func.count(), func.min(failure_table.c.failed_at)).where(
    failure_table.c.failed_at > bindparam("since")
)
FAILURES_OF_ACCOUNT = RECENT_FAILURES.where(failure_table.c.account == bindparam("account"))
FAILURES_OF_CLIENT = RECENT_FAILURES.where(failure_table.c.client == bindparam("client"))


@dataclass(frozen=True)
class Failures:
    count: int
    oldest: datetime | None


@dataclass(frozen=True)
class LoginState:
    user_id: int | None
    hashed_password: str | None
    by_account: Failures
    by_client: Failures


def login_state(connection: Connection, account: str, client: str, since: datetime) -> LoginState:
    """The account (if any) and the failures since `since`."""
    user = connection.execute(ACCOUNT, {"account": account}).first()
    by_account = connection.execute(FAILURES_OF_ACCOUNT, {"account": account, "since": since})
    by_client = connection.execute(FAILURES_OF_CLIENT, {"client": client, "since": since})
    return LoginState(
        user_id=user.id if user else None,
        hashed_password=user.hashed_password if user else None,
        by_account=Failures(*by_account.one()),
        by_client=Failures(*by_client.one()),
    )


def record_failure(
    connection: Connection, account: str, client: str, now: datetime, since: datetime
) -> None:
    """Count one failure, and forget those too old to count any more."""
    connection.execute(delete(failure_table).where(failure_table.c.failed_at <= since))
    connection.execute(
        insert(failure_table), {"account": account, "client": client, "failed_at": now}
    )


def clear_failures(connection: Connection, account: str) -> None:
    """A successful login forgives the account's failures (not the client's)."""
    connection.execute(delete(failure_table).where(failure_table.c.account == account))
