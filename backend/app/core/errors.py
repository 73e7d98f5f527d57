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


class NotAuthenticated(AppError):
    """No token, or one that is malformed, forged, expired or names no user (answered with
    `WWW-Authenticate: Bearer`)."""

    status_code = 401


class Forbidden(AppError):
    status_code = 403


class LoginFailed(AppError):
    """Unknown account or wrong password: one message for both, so accounts cannot be probed."""

    status_code = 400

    def __init__(self) -> None:
        super().__init__("Incorrect email or password")


class TooManyLoginFailures(AppError):
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed logins; try again in {retry_after} seconds")
        self.retry_after = retry_after
