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


def test_unknown_and_known_client_ids_cost_one_hash_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """No timing oracle: an unknown id is verified against a fixed dummy hash, once, like a known one."""
    from geoexport.auth import clients

    runs: list[str] = []
    real = clients.verify_secret
    monkeypatch.setattr(
        clients, "verify_secret", lambda secret, stored: runs.append(stored) or real(secret, stored)
    )
    dummy = clients.unknown_client_hash()  # made once; verifying never hashes anew
    monkeypatch.setattr(clients, "hash_secret", lambda *a, **k: pytest.fail("no hashing while verifying"))

    class Table:
        def __init__(self, item: dict | None) -> None:  # type: ignore[type-arg]
            self.item = item

        def get_item(self, **kwargs: object) -> dict:  # type: ignore[type-arg]
            return {"Item": self.item} if self.item else {}

    stored = hash_secret("right", iterations=1000)
    known = {
        "clientId": {"S": "c1"},
        "name": {"S": "n"},
        "secretHash": {"S": stored},
        "scopes": {"SS": ["exports:read"]},
        "webhookSecret": {"S": "whsec_x"},
    }
    assert clients.ClientRepository(Table(known), "t").verify("c1", "right") is not None
    assert clients.ClientRepository(Table(None), "t").verify("nobody", "right") is None
    assert runs == [stored, dummy]
