from pydantic import BaseModel


class ErrorMessage(BaseModel):
    """The body of every 404, 409 and 503 this API returns."""

    detail: str
