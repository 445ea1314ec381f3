"""Issue 12: 40 wrong guesses at POST /auth/token saturated both cores. Failures lock the client id and the
source address out (429 with Retry-After) before any hashing, with a delay that doubles per failure."""

from __future__ import annotations

from uuid import uuid4

import pytest

from geoexport.auth.attempts import Attempts, Brake
from geoexport.auth.clients import ClientRepository
from geoexport.auth.service import AuthService
from geoexport.errors import TooManyAttempts, Unauthorized
from tests.integration.conftest import Cloud


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingClients(ClientRepository):
    """The real repository, counting the PBKDF2 verifications a lockout must spare."""

    verified = 0

    def verify(self, client_id: str, client_secret: str) -> object:  # type: ignore[override]
        CountingClients.verified += 1
        return super().verify(client_id, client_secret)


def setup(cloud: Cloud) -> tuple[AuthService, Clock, str, str]:
    clients = CountingClients(cloud.client("dynamodb"), cloud.stack.physical["ClientsTable"])
    created = clients.create("guessed", client_id=f"guessed-{uuid4().hex[:8]}")
    clock = Clock()
    attempts = Attempts(
        cloud.client("dynamodb"),
        cloud.stack.physical["CountersTable"],
        clock,
        source_brake=Brake("source", threshold=20),
    )
    service = AuthService(clients, lambda: b"k" * 32, 3600, clock=clock, attempts=attempts)
    return service, clock, created.client.client_id, created.client_secret


def test_a_guessed_client_id_is_locked_out_with_a_doubling_delay(cloud: Cloud) -> None:
    service, clock, client_id, secret = setup(cloud)
    source = f"198.51.100.{uuid4().int % 250}"
    for _ in range(5):
        with pytest.raises(Unauthorized):
            service.issue(client_id, "wrong", source)
    before = CountingClients.verified
    with pytest.raises(TooManyAttempts) as locked:
        service.issue(client_id, secret, source)  # even the right secret waits out the lock
    assert locked.value.retry_after_seconds == 1 and locked.value.problems[0].field == "client_id"
    assert CountingClients.verified == before  # refused before any hashing
    clock.now += 1.5
    with pytest.raises(Unauthorized):
        service.issue(client_id, "wrong", source)  # the 6th failure: locked twice as long
    with pytest.raises(TooManyAttempts) as locked:
        service.issue(client_id, secret, source)
    assert locked.value.retry_after_seconds == 2
    clock.now += 2.5
    assert service.issue(client_id, secret, source).access_token  # waited out: the right secret works
    with pytest.raises(Unauthorized):
        service.issue(client_id, "wrong", source)  # the success cleared the count: not locked at once
    assert service.issue(client_id, secret, source).access_token


def test_one_address_guessing_many_client_ids_is_locked_out(cloud: Cloud) -> None:
    service, clock, client_id, secret = setup(cloud)
    source = "203.0.113.77"
    guessed = [f"nobody-{uuid4().hex[:6]}-{n}" for n in range(20)]
    for name in guessed:
        with pytest.raises(Unauthorized):
            service.issue(name, "wrong", source)
    # A guesser's random ids do not pile up: each count carries the table's TTL attribute.
    item = cloud.client("dynamodb").get_item(
        TableName=cloud.stack.physical["CountersTable"],
        Key={"name": {"S": f"auth-failures#client#{guessed[0]}"}},
    )["Item"]
    assert clock.now < int(item["expiresAt"]["N"]) <= clock.now + 1800
    with pytest.raises(TooManyAttempts) as locked:
        service.issue(client_id, secret, source)
    assert locked.value.problems[0].field == "source"
    assert service.issue(client_id, secret, "203.0.113.78").access_token  # other addresses are not
    clock.now += 16 * 60  # a new window: the old failures no longer count
    assert service.issue(client_id, secret, source).access_token


def test_brake_delays_double_up_to_the_cap() -> None:
    brake = Brake("client_id", threshold=5, first_lock_seconds=1, max_lock_seconds=900)
    assert [brake.lock_seconds(n) for n in (4, 5, 6, 7, 20)] == [0, 1, 2, 4, 900]
