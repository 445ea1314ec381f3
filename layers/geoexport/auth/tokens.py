"""JSON Web Tokens through PyJWT, HS256 only (a fixed algorithm list: no algorithm confusion possible).

Expiry is checked against the caller's clock (``now``), so it is testable and agrees with the issuer's.
"""

from __future__ import annotations

from typing import Any

import jwt

ALGORITHM = "HS256"


class TokenError(Exception):
    """The token is malformed, forged, expired or not for us; the message is safe to log, not to show."""


def encode(claims: dict[str, Any], key: bytes) -> str:
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"typ": "JWT"})


def decode(token: str, key: bytes, now: float, issuer: str, audience: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            options={"verify_exp": False, "verify_iat": False, "require": ["iss", "aud"]},
        )
    except jwt.InvalidAlgorithmError as error:
        raise TokenError("unsupported token header") from error
    except jwt.InvalidSignatureError as error:
        raise TokenError("bad signature") from error
    except (jwt.InvalidAudienceError, jwt.InvalidIssuerError, jwt.MissingRequiredClaimError) as error:
        raise TokenError("not issued for this API") from error
    except jwt.InvalidTokenError as error:  # DecodeError and the rest: not a token we could read
        raise TokenError("malformed token") from error
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= now:
        raise TokenError("expired")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenError("no subject")
    return claims
