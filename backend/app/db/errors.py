"""Which database errors mean "unavailable" rather than "bug", on each driver.

psycopg2 raises OperationalError for exactly those conditions. PyMySQL raises it also for any
server error it has no class for (an unknown column, say), so for MariaDB/MySQL the error code
decides.
"""

from sqlalchemy.exc import DBAPIError, OperationalError

# MariaDB/MySQL: the server cannot be reached or is going away; waiting can fix these.
MYSQL_UNREACHABLE = {
    2003,  # can't connect: refused, timed out, or a host name not in DNS (yet)
    2006,  # server has gone away
    2013,  # lost connection during a query: the server stopped or restarts
    1040,  # too many connections
    1053,  # server shutdown in progress
    1927,  # connection was killed
}
# MariaDB/MySQL: the statement took too long (statement timeout, lock wait timeout).
MYSQL_TOO_SLOW = {1969, 3024, 1205}
# MariaDB/MySQL: the connection is refused for its credentials or database (a wrong password,
# a missing database): the app cannot reach its data, as on PostgreSQL (503); the prestart job
# stops at once on these, since waiting cannot fix them.
MYSQL_REFUSED = {1044, 1045, 1049, 1698}


def mysql_error_code(exc: DBAPIError) -> int | None:
    """The MariaDB/MySQL error number behind `exc`, or None for other drivers."""
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def database_unavailable(exc: DBAPIError) -> bool:
    """Lost, refused, timed out or overloaded: retryable, so a 503, never a 500."""
    if exc.connection_invalidated:
        return True
    code = mysql_error_code(exc)
    if code is not None:
        return code in MYSQL_UNREACHABLE | MYSQL_TOO_SLOW | MYSQL_REFUSED
    return isinstance(exc, OperationalError)
