import logging


def configure_logging(level: str) -> None:
    """Plain lines on stderr; gunicorn and uvicorn keep their own handlers."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s [%(name)s] %(message)s",
    )
    # /health/ready reads the revision through Alembic, which logs its context on every probe.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
