"""JSON Web Tokens, HS256 only, in the standard library: small, and no algorithm confusion possible."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenError(Exception):
    """The token is malformed, forged, expired or not for us; the message is safe to log, not to show."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(claims: dict[str, Any], key: bytes) -> str:
    head = _b64(json.dumps(HEADER, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signature = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def decode(token: str, key: bytes, now: float, issuer: str, audience: str) -> dict[str, Any]:
    try:
        head, body, signature = token.split(".")
        header = json.loads(_unb64(head))
        claims: dict[str, Any] = json.loads(_unb64(body))
        given = _unb64(signature)
    except (ValueError, TypeError) as error:
        raise TokenError("malformed token") from error
    if header != HEADER:
        raise TokenError("unsupported token header")
    expected = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise TokenError("bad signature")
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= now:
        raise TokenError("expired")
    if claims.get("iss") != issuer or claims.get("aud") != audience:
        raise TokenError("not issued for this API")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenError("no subject")
    return claims
