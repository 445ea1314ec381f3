"""Tokens, secret hashing and the authorizer's policy."""

import base64
import json

import pytest

from geoexport.auth import tokens
from geoexport.auth.passwords import hash_secret, verify_secret
from geoexport.auth.policy import decide
from geoexport.auth.service import AUDIENCE, ISSUER, Principal
from geoexport_local.gateway import _allows

KEY = b"k" * 32
CLAIMS = {"sub": "c1", "scope": "exports:read", "iat": 1000, "exp": 2000, "iss": ISSUER, "aud": AUDIENCE}


def test_round_trip() -> None:
    assert tokens.decode(tokens.encode(CLAIMS, KEY), KEY, 1500, ISSUER, AUDIENCE) == CLAIMS


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "bad signature"),
        (lambda t: tokens.encode(CLAIMS, b"other key"), "bad signature"),
        (lambda t: tokens.encode({**CLAIMS, "exp": 1400}, KEY), "expired"),
        (lambda t: tokens.encode({**CLAIMS, "aud": "someone-else"}, KEY), "not issued"),
        (lambda t: tokens.encode({**CLAIMS, "sub": ""}, KEY), "no subject"),
        (lambda t: "not.a.token", "malformed"),
        (
            lambda t: t.replace(
                t.split(".")[0],
                base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
                .decode()
                .rstrip("="),
            ),
            "header",
        ),
    ],
)
def test_forged_expired_or_foreign_tokens_are_refused(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(tokens.TokenError, match=reason):
        tokens.decode(mutate(tokens.encode(CLAIMS, KEY)), KEY, 1500, ISSUER, AUDIENCE)


def test_secrets_are_hashed_with_salt_and_verified() -> None:
    stored = hash_secret("s3cret", iterations=1000)
    assert "s3cret" not in stored and stored != hash_secret("s3cret", iterations=1000)
    assert verify_secret("s3cret", stored)
    assert not verify_secret("s3cret!", stored)
    assert not verify_secret("s3cret", "garbage")


ARN = "arn:aws:execute-api:us-east-1:123456789012:api/v1"


def test_read_scope_allows_reads_only() -> None:
    answer = decide(Principal("c1", frozenset({"exports:read"})), f"{ARN}/GET/export-tasks")
    policy = answer["policyDocument"]
    assert answer["principalId"] == "c1" and answer["context"]["sub"] == "c1"
    assert _allows(policy, f"{ARN}/GET/export-tasks/abc")
    assert not _allows(policy, f"{ARN}/POST/export-tasks")


def test_write_scope_allows_everything_and_no_scope_nothing() -> None:
    writer = decide(Principal("c1", frozenset({"exports:write"})), f"{ARN}/POST/export-tasks")[
        "policyDocument"
    ]
    assert _allows(writer, f"{ARN}/POST/export-tasks/x/abort") and _allows(writer, f"{ARN}/GET/storage")
    nobody = decide(Principal("c1", frozenset()), f"{ARN}/GET/storage")["policyDocument"]
    assert not _allows(nobody, f"{ARN}/GET/storage")
