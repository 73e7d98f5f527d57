from pydantic import BaseModel


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    revision: str | None = None
    head: str | None = None
    detail: str | None = None
