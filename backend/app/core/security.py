"""Passwords and access tokens: pwdlib (Argon2) and PyJWT, as the FastAPI project template uses."""

import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from pwdlib import PasswordHash

ALGORITHM = "HS256"


@lru_cache
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


@lru_cache
def _unknown_user_hash() -> str:
    return hash_password("a password no account has")


def verify_password(password: str, hashed: str | None) -> bool:
    """Whether `password` matches `hashed`. Without a hash (no such user, or one without a
    password) a hash is verified all the same and fails: both take the same time."""
    matches = _hasher().verify(password, hashed or _unknown_user_hash())
    return matches and hashed is not None


class InvalidToken(Exception):
    """The token is malformed, forged or expired."""


class TokenSigner:
    """Issues and reads the bearer tokens: `sub` is the user's id.

    A client sends the same token with each request until it expires, and checking its
    signature again each time is a measurable part of a write (docs/performance.md). So each
    worker remembers the tokens it has verified (a bounded number, least recently used first
    out) with their expiry, which is checked on every use.
    """

    def __init__(self, key: str, lifetime: timedelta, remembered: int = 4096) -> None:
        self._key = key
        self.lifetime = lifetime
        self._verified = lru_cache(maxsize=remembered)(self._verify)

    def issue(self, user_id: int) -> str:
        now = datetime.now(UTC)
        claims = {"sub": str(user_id), "iat": now, "exp": now + self.lifetime}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def user_id(self, token: str) -> int:
        user_id, expires_at = self._verified(token)
        if time.time() >= expires_at:
            raise InvalidToken("Signature has expired")
        return user_id

    def _verify(self, token: str) -> tuple[int, float]:
        """(user id, expiry as a POSIX time) of a token whose signature is this app's; an
        invalid token raises, and is not remembered."""
        try:
            claims = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
            )
            return int(claims["sub"]), float(claims["exp"])
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from exc
