"""Bearer tokens on every route but the public ones; scopes; and another client's tasks do not exist."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Service
from tests.e2e.test_api_e2e import Z8, landsat, square
from tests.e2e.test_export_e2e import export_body

PUBLIC = [("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/docs")]
TASK = "00000000-0000-4000-8000-000000000001"
PROTECTED = [
    ("GET", "/catalog/records"),
    ("GET", f"/catalog/records/{TASK}"),
    ("GET", "/export-tasks"),
    ("POST", "/export-tasks"),
    ("GET", f"/export-tasks/{TASK}"),
    ("POST", f"/export-tasks/{TASK}/abort"),
    ("POST", f"/export-tasks/{TASK}/callbacks:replay"),
    ("GET", "/storage"),
    ("GET", "/models"),
    ("POST", "/models"),
    ("GET", "/models/city"),
    ("POST", "/features"),
    ("GET", f"/features/URN:FEATURE:DATA:geoexport:{TASK}"),
    ("PATCH", f"/features/URN:FEATURE:DATA:geoexport:{TASK}"),
    ("DELETE", f"/features/URN:FEATURE:DATA:geoexport:{TASK}"),
    ("GET", "/requests/some-request"),
    ("POST", "/products/get_product"),
    ("GET", f"/services/order_status/{TASK}"),
    ("POST", "/create/roi"),
    ("GET", f"/taskStatus/{TASK}"),
]


def cli(service: Service, *args: str) -> str:
    env = {**os.environ, "GEOEXPORT_STATE": str(service.state)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "geoexport"), *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def new_client(
    service: Service, name: str, scopes: str | None = None, plan: str = "standard"
) -> dict[str, Any]:
    args = ["client", "create", name, "--plan", plan] + (["--scopes", scopes] if scopes else [])
    return json.loads(cli(service, *args))  # type: ignore[no-any-return]


def test_public_routes_need_no_token(service: Service) -> None:
    for method, path in PUBLIC:
        status = service.request(method, path, token=None)[0] if path != "/docs" else 200
        assert status == 200, path


def test_protected_routes_refuse_missing_and_bad_tokens(service: Service) -> None:
    forged = service.token[:-4] + ("AAAA" if not service.token.endswith("AAAA") else "BBBB")
    for method, path in PROTECTED:
        assert service.request(method, path, {}, token=None)[0] == 401, path
        assert service.request(method, path, {}, token=forged)[0] == 401, path
        assert service.request(method, path, {}, token="not-a-jwt")[0] == 401, path
    wrong = service.request(
        "POST", "/auth/token", {"client_id": service.client_id, "client_secret": "x"}, token=None
    )
    assert wrong[0] == 401 and wrong[1]["errors"][0]["field"] == "client_secret"
    clc = service.request(
        "POST",
        "/auth/get_bearer_token",
        {"user_id": service.client_id, "client_secret": service.client_secret},
        token=None,
    )
    assert clc[0] == 200 and clc[1]["token_type"] == "Bearer" and clc[1]["expires_in"] > 0


def test_cli_token_works_against_the_api(service: Service) -> None:
    token = cli(service, "token")
    assert service.request("GET", "/storage", token=token)[0] == 200


def test_read_only_client_gets_403_on_writes(service: Service) -> None:
    reader = new_client(service, "reader", "exports:read")
    token = service.issue_token(reader["client_id"], reader["client_secret"])
    assert service.request("GET", "/export-tasks", token=token)[0] == 200
    body = export_body(landsat(service), square(-78.0, 24.0, 0.1), Z8)
    status, answer, _ = service.request("POST", "/export-tasks", body, token=token)
    assert status == 403 and "not authorized" in answer["message"]


def test_another_clients_task_does_not_exist_on_any_route(service: Service) -> None:
    body = export_body(landsat(service), square(-77.6, 24.4, 0.1), Z8)
    status, mine, _ = service.request("POST", "/export-tasks", body)
    assert status == 201
    other = new_client(service, "other")
    token = service.issue_token(other["client_id"], other["client_secret"])
    task = mine["id"]
    assert service.request("GET", f"/export-tasks/{task}", token=token)[0] == 404
    assert service.request("POST", f"/export-tasks/{task}/abort", token=token)[0] == 404
    assert service.request("POST", f"/export-tasks/{task}/callbacks:replay", token=token)[0] == 404
    assert service.request("GET", f"/taskStatus/{task}", token=token)[0] == 404
    listed = service.request("GET", "/export-tasks?limit=100", token=token)[1]["items"]
    assert task not in {t["id"] for t in listed}
    # The same request from the other client is its own task (dedupe never crosses owners).
    status, theirs, _ = service.request("POST", "/export-tasks", body, token=token)
    assert status == 201 and theirs["id"] != task
    assert service.request("GET", f"/export-tasks/{theirs['id']}")[0] == 404  # and mine cannot see theirs
    assert service.request("GET", f"/export-tasks/{task}")[0] == 200
    service.wait(task)


def test_usage_plans_limit_each_client_on_its_own(service: Service) -> None:
    trial = new_client(service, "trial", None, plan="restricted")  # 1 request/s, bursts of 5
    token = service.issue_token(trial["client_id"], trial["client_secret"])
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: service.request("GET", "/storage", token=token), range(20)))
    elapsed = time.monotonic() - started
    allowed = [a for a in answers if a[0] == 200]
    throttled = [a for a in answers if a[0] == 429]
    assert len(allowed) + len(throttled) == 20
    assert 5 <= len(allowed) <= 5 + int(elapsed * 1) + 1, (len(allowed), elapsed)
    assert throttled and all(a[1]["message"] == "Too Many Requests" for a in throttled)
    # Another client's plan is its own: the demo client is not slowed by the trial client's burst.
    assert service.request("GET", "/storage")[0] == 200
    # Public routes are not metered (no key needed): health answers whatever the plans say.
    assert all(service.request("GET", "/health", token=None)[0] == 200 for _ in range(10))


@pytest.mark.parametrize("revoke", ["disable", "delete"])
def test_revoking_a_client_with_the_cli_stops_its_tokens_at_once(service: Service, revoke: str) -> None:
    """Issue 12: a token kept working after its client was deleted."""
    revoked = new_client(service, f"to-{revoke}")
    token = service.issue_token(revoked["client_id"], revoked["client_secret"])
    assert service.request("GET", "/export-tasks", token=token)[0] == 200
    assert json.loads(cli(service, "client", revoke, revoked["client_id"]))[f"{revoke}d"] is True
    assert service.request("GET", "/export-tasks", token=token)[0] == 401
    again = {"client_id": revoked["client_id"], "client_secret": revoked["client_secret"]}
    assert service.request("POST", "/auth/token", again, token=None)[0] == 401


def test_guessing_a_client_secret_is_locked_out_with_retry_after(service: Service) -> None:
    """Issue 12: each guess cost a 210,000-iteration PBKDF2, unthrottled (40 saturated both cores)."""
    guessed = new_client(service, "guessed")
    wrong = {"client_id": guessed["client_id"], "client_secret": "gxs_not-the-secret"}
    assert [service.request("POST", "/auth/token", wrong, token=None)[0] for _ in range(5)] == [401] * 5
    right = {"client_id": guessed["client_id"], "client_secret": guessed["client_secret"]}
    status, body, headers = service.request("POST", "/auth/token", right, token=None)
    assert status == 429 and int(headers["Retry-After"]) >= 1, (status, body, headers)
    assert body["errors"][0]["field"] == "client_id" and "locked" in body["errors"][0]["reason"]
    time.sleep(int(headers["Retry-After"]) + 0.2)
    assert service.request("POST", "/auth/token", right, token=None)[0] == 200  # waited out: it works
