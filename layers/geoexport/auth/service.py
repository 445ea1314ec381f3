"""Issuing bearer tokens for client credentials, and deciding what a token may call."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from geoexport.auth import tokens
from geoexport.auth.attempts import Attempts
from geoexport.auth.clients import ClientRepository
from geoexport.errors import FieldProblem, Unauthorized

ISSUER = "geoexport"
AUDIENCE = "geoexport-api"
READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Token:
    access_token: str
    token_type: str
    expires_in: int


@dataclass(frozen=True)
class Principal:
    sub: str
    scopes: frozenset[str]


def required_scope(method: str) -> str:
    """Reads need exports:read, everything else exports:write."""
    return "exports:read" if method.upper() in READ_METHODS else "exports:write"


class AuthService:
    def __init__(
        self,
        clients: ClientRepository,
        key: Callable[[], bytes],
        lifetime_seconds: int,
        clock: Callable[[], float] = time.time,
        attempts: Attempts | None = None,
    ) -> None:
        self._attempts = attempts
        self._clients = clients
        self._key = key
        self._lifetime = lifetime_seconds
        self._clock = clock

    def issue(self, client_id: str, client_secret: str, source: str | None = None) -> Token:
        """A token for valid credentials. With ``attempts``, a client id or ``source`` address locked after
        repeated failures is refused (429) before any hashing, and each failure counts against both."""
        if self._attempts is not None:
            self._attempts.check(client_id, source)
        client = self._clients.verify(client_id, client_secret)
        if self._attempts is not None:
            if client is None:
                self._attempts.failed(client_id, source)
            else:
                self._attempts.succeeded(client_id)
        if client is None:
            raise Unauthorized(
                "invalid client credentials",
                [FieldProblem("client_secret", "unknown client or wrong secret")],
            )
        now = int(self._clock())
        claims = {
            "sub": client.client_id,
            "scope": " ".join(client.scopes),
            "iat": now,
            "exp": now + self._lifetime,
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        return Token(tokens.encode(claims, self._key()), "Bearer", self._lifetime)

    def principal(self, authorization: str | None) -> Principal:
        """The caller behind an ``Authorization: Bearer ...`` header; TokenError when there is none."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise tokens.TokenError("no bearer token")
        claims = tokens.decode(token.strip(), self._key(), self._clock(), ISSUER, AUDIENCE)
        client = self._clients.get(str(claims["sub"]))
        if client is None or client.disabled:  # revoked: a token outlives neither its client nor a disable
            raise tokens.TokenError("the client was deleted or disabled")
        return Principal(str(claims["sub"]), frozenset(str(claims.get("scope", "")).split()))
