"""What can go wrong in the domain, independent of HTTP; `api/errors.py` maps each to a status."""


class AppError(Exception):
    status_code = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class InvalidReference(AppError):
    """A payload field names a row that does not exist (reported like a validation error)."""

    status_code = 422

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
