"""Every function's handler, called directly with its sample event from ``events/`` (SAM's convention).

AWS is moto's in-process mock (no network, no server), provisioned from template.yaml; each handler is
imported with its own environment from the template, as its cold start would be. The only stand-ins are
the webhook sender (no receiver on the internet) and the Lambda-to-Lambda notifier (moto would need Docker).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID, uuid4

import pytest
from moto import mock_aws

from geoexport import bootstrap
from geoexport.auth.clients import ClientRepository
from geoexport.errors import NotFound
from geoexport.models import CatalogRecord, SourceLocation, StoredArtifact, TaskRecord, TaskStatus
from geoexport.models.tasks import ArtifactType, CreateExportTaskRequest, WebhookDelivery, WebhookEvent
from geoexport.notify.delivery import DeliveryOutcome
from geoexport.settings import Settings
from geoexport_local.emulator import provision
from geoexport_local.template import Stack, read_stack
from tests.support import ROOT

TASK = UUID("3f1c8a52-6a3e-4b8e-9a55-1d2c3b4a5e6f")
RECORD = UUID("0b6e1a4c-2f0d-4b7e-8d8a-1e9b2c3d4e5f")
CLIENT = "demo-client"
EVENTS = ROOT / "events"
STACK = read_stack(ROOT)


@dataclass
class Context:
    """What Lambda passes as the context (powertools' logger reads these)."""

    function_name: str = "handler-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:handler-test"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Sent:
    """A webhook sender that records instead of calling the internet."""

    calls: list[tuple[str, WebhookEvent, dict[str, Any]]] = field(default_factory=list)

    def send(
        self, url: str, event: WebhookEvent, body: dict[str, Any], message_id: str, secret: str | None
    ) -> WebhookDelivery:
        self.calls.append((url, event, body))
        return WebhookDelivery(
            url=url,
            event=event,
            deliveredAt=datetime.now(UTC),
            outcome=DeliveryOutcome.DELIVERED,
            attempts=1,
            statusCode=204,
        )


@pytest.fixture(scope="module")
def aws() -> Iterator[Settings]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": STACK.region,
            "AWS_REGION": STACK.region,
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            stack = read_stack(ROOT)
            provision(stack, None)  # type: ignore[arg-type]  # None: boto3's default endpoints (mocked)
            environment: dict[str, str] = {}
            for function in stack.functions.values():
                environment.update(function.environment)
            yield Settings.from_environ({**environment, "AWS_REGION": stack.region})


def load(name: str, monkeypatch: pytest.MonkeyPatch, stack: Stack = STACK) -> ModuleType:
    """Import functions/<name>/app.py with the function's environment from the template."""
    function = next(f for f in stack.functions.values() if f.code_dir.name == name)
    for key, value in function.environment.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(f"handler_{name}", function.code_dir / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return loaded


def invoke(name: str, monkeypatch: pytest.MonkeyPatch, payload: dict[str, Any] | None = None) -> Any:
    return load(name, monkeypatch).lambda_handler(payload or event(name), Context())


def emitted(out: str) -> dict[str, list[float]]:
    """The metrics in the EMF lines a handler printed: name -> values."""
    found: dict[str, list[float]] = {}
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                found.setdefault(metric["Name"], []).extend(value if isinstance(value, list) else [value])
    return found


def body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def store_task(settings: Settings, status: TaskStatus, owner: str = CLIENT, **extra: Any) -> TaskRecord:
    request = CreateExportTaskRequest.model_validate(
        json.loads(event("task_changes")["Records"][0]["dynamodb"]["NewImage"]["request"]["S"])
    )
    now = datetime.now(UTC)
    task = TaskRecord(
        id=TASK,
        status=status,
        progress=10,
        request=extra.pop("request", request),
        createdAt=now,
        updatedAt=now,
        owner=owner,
        **extra,
    )
    settings_db = bootstrap.task_repository(settings)
    db = settings_db._db  # replace whatever an earlier test left under the same id
    db.delete_item(TableName=settings.tasks_table, Key={"id": {"S": str(TASK)}})
    settings_db.create(task)
    return task


def ensure_client(settings: Settings) -> None:
    """The client the sample events act for (their secret is the sample token request's)."""
    clients = ClientRepository(bootstrap.aws.client("dynamodb", settings), settings.clients_table)
    if clients.get(CLIENT) is None:
        clients.create("demo", client_id=CLIENT, client_secret="s3cret-from-the-cli")


def put_sample_record(settings: Settings) -> None:
    """The catalog record the sample create events name."""
    record = CatalogRecord(
        id=RECORD,
        name="sample",
        footprint={
            "type": "Polygon",
            "coordinates": [[[-78, 24], [-77, 24], [-77, 25], [-78, 25], [-78, 24]]],
        },
        maxResolutionDeg=0.0001,
        crs="EPSG:4326",
        bands=3,
        dtype="uint8",
        width=10,
        height=10,
        source=SourceLocation(bucket="b", key="k.tif"),
    )
    bootstrap.catalog_repository(settings).put(record)


def test_every_function_has_a_sample_event() -> None:
    names = {function.code_dir.name for function in STACK.functions.values()}
    assert names == {path.stem for path in EVENTS.glob("*.json")}


def test_health_and_docs(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    health = invoke("health", monkeypatch)
    assert health["statusCode"] == 200 and body(health)["status"] == "ok"
    docs = invoke("docs", monkeypatch)
    assert docs["statusCode"] == 200 and body(docs)["openapi"].startswith("3.")


def test_token_and_authorizer(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = invoke("auth_token", monkeypatch)  # the sample's secret is not the client's
    assert refused["statusCode"] == 401
    ensure_client(aws)
    issued = invoke("auth_token", monkeypatch)
    assert issued["statusCode"] == 200, issued["body"]
    token = body(issued)["access_token"]
    with pytest.raises(Exception, match=r"^Unauthorized$"):  # API Gateway's 401 contract
        invoke("authorizer", monkeypatch)
    allowed = invoke(
        "authorizer", monkeypatch, {**event("authorizer"), "authorizationToken": f"Bearer {token}"}
    )
    assert allowed["principalId"] == CLIENT
    assert allowed["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_create_read_list_and_abort(
    aws: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    put_sample_record(aws)
    created = invoke("create_task", monkeypatch)
    assert created["statusCode"] == 201, created["body"]
    task_id = body(created)["id"]
    assert created["multiValueHeaders"]["Location"] == [f"/export-tasks/{task_id}"]
    stored = bootstrap.task_repository(aws).get(task_id)
    assert stored.owner == CLIENT and stored.executionArn  # the workflow was started
    again = invoke("create_task", monkeypatch)  # the same request: deduplicated
    assert again["statusCode"] == 200 and body(again)["id"] == task_id
    metrics = emitted(capsys.readouterr().out)
    assert metrics["ExportsCreated"] == [1] and metrics["ExportsDeduplicated"] == [1]

    catalog = invoke("catalog", monkeypatch)
    assert catalog["statusCode"] == 200 and str(RECORD) in catalog["body"]

    store_task(aws, TaskStatus.IN_PROGRESS)
    read = invoke("get_task", monkeypatch)
    assert read["statusCode"] == 200 and body(read)["id"] == str(TASK)
    stranger = event("get_task")
    stranger["requestContext"]["authorizer"] = {"sub": "someone-else"}
    assert invoke("get_task", monkeypatch, stranger)["statusCode"] == 404  # not theirs: it does not exist

    module = load("abort_task", monkeypatch)
    notified: list[dict[str, Any]] = []
    monkeypatch.setattr(
        module.service, "_notifier", type("N", (), {"notify_async": lambda _, p: notified.append(p)})()
    )
    aborted = module.lambda_handler(event("abort_task"), Context())
    assert aborted["statusCode"] == 200 and body(aborted)["status"] == "ABORTED"
    assert notified == [{"taskId": str(TASK), "outcome": "aborted"}]  # Notify cleans up after it
    assert module.lambda_handler(event("abort_task"), Context())["statusCode"] == 409

    storage = invoke("storage", monkeypatch)
    assert storage["statusCode"] == 200 and body(storage)["total"] == aws.storage_quota_bytes


def test_clc_order_status_of_an_unknown_order_is_404(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    bootstrap.task_repository(aws)._db.delete_item(TableName=aws.tasks_table, Key={"id": {"S": str(TASK)}})
    answer = invoke("clc_facade", monkeypatch)
    assert answer["statusCode"] == 404 and str(TASK) in body(answer)["message"]


def test_replay_with_nothing_exhausted_replays_nothing(
    aws: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_task(aws, TaskStatus.COMPLETED)
    answer = invoke("replay_callbacks", monkeypatch)
    assert answer["statusCode"] == 200 and body(answer) == {"taskId": str(TASK), "replayed": []}


def test_models_features_and_feature_requests(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_client(aws)
    model = invoke("feature_models", monkeypatch)
    assert model["statusCode"] in (201, 409), model["body"]
    listed = invoke("features", monkeypatch)
    assert listed["statusCode"] == 200 and isinstance(body(listed)["items"], list)
    outcome = invoke("feature_requests", monkeypatch)
    assert outcome == {"batchItemFailures": []}
    record = bootstrap.request_reader(aws).get("6a7e8feb-b491-4cf7-a9f1-bf3703467718")
    assert record is not None and record.state.value == "SUCCESS", record.errors
    malformed = event("feature_requests")
    malformed["Records"][0]["body"] = "{not json"
    assert invoke("feature_requests", monkeypatch, malformed) == {"batchItemFailures": []}  # dead-lettered


def test_an_export_requested_by_an_event_is_answered_once(
    aws: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample ExportRequested event (the API's create body plus requestOwner and requestId): a task is
    created for its owner and the answer kept; the same event again answers the same; a malformed one is
    dead-lettered."""
    ensure_client(aws)
    put_sample_record(aws)
    assert invoke("export_requests", monkeypatch) == {"batchItemFailures": []}
    module = load("export_requests", monkeypatch)
    answer = module.requests.handle(event("export_requests")["Records"][0]["body"], "again")
    assert answer.outcome == "ExportRequestAccepted" and answer.requestId == "portal-order-0001"
    task = bootstrap.task_repository(aws).get(answer.taskId)
    assert task.owner == CLIENT and task.executionArn
    malformed = event("export_requests")
    malformed["Records"][0]["body"] = "{not json"
    assert invoke("export_requests", monkeypatch, malformed) == {"batchItemFailures": []}  # dead-lettered


def test_a_file_for_no_feature_is_handled(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("feature_files", monkeypatch) == {"batchItemFailures": []}


def test_geometry_checks_a_crs(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("geometry", monkeypatch) == {"problem": None}
    assert "EPSG:999999" in str(invoke("geometry", monkeypatch, {"op": "crs", "code": "999999"})["problem"])


def test_steps_of_an_unknown_task_raise_not_found(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state machine sees the error type (its Retry/Catch match on it)."""
    bootstrap.task_repository(aws)._db.delete_item(TableName=aws.tasks_table, Key={"id": {"S": str(TASK)}})
    for name in ("clip", "package", "upload"):
        with pytest.raises(NotFound):
            invoke(name, monkeypatch)


def test_upload_publishes_the_staged_file_and_notify_completes(
    aws: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_task(aws, TaskStatus.IN_PROGRESS)
    staged = event("upload")["files"][0]
    (tmp_path / "export.gpkg").write_bytes(b"hello")  # as Package stages it
    bootstrap.exports_store(aws).put_file(
        staged["key"], tmp_path / "export.gpkg", staged["sha256"], "application/geopackage+sqlite3"
    )
    assert invoke("upload", monkeypatch) == {"taskId": str(TASK)}
    task = bootstrap.task_repository(aws).get(TASK)
    assert [a.sha256 for a in task.artifacts] == [
        hashlib.sha256(b"hello").hexdigest()
    ] and task.progress == 90
    capsys.readouterr()
    done = invoke("notify", monkeypatch)
    assert done == {"taskId": str(TASK), "status": "COMPLETED"}
    assert bootstrap.task_repository(aws).get(TASK).expiredAt is not None
    assert len(emitted(capsys.readouterr().out)["StepDuration"]) == 1


def test_task_changes_send_the_final_callback_once(
    aws: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store_task(aws, TaskStatus.FAILED, errorReason="Clip step failed")
    module = load("task_changes", monkeypatch)
    sent = Sent()
    monkeypatch.setattr(module.deliveries, "_sender", sent)
    assert module.lambda_handler(event("task_changes"), Context()) == {"batchItemFailures": []}
    ((url, kind, payload),) = sent.calls
    assert url == "https://example.org/hooks/geoexport" and kind is WebhookEvent.TASK_FAILED
    assert payload["jobId"] == str(TASK) and payload["status"] == "FAILED"
    module.lambda_handler(event("task_changes"), Context())  # the stream delivers a record again
    assert len(sent.calls) == 1
    assert emitted(capsys.readouterr().out)["ExportsFailed"] == [1]  # counted once


def test_quicklook_answers_the_png_inline_with_its_corners(
    aws: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (300).to_bytes(4, "big") + (200).to_bytes(4, "big")
    key = f"exports/{TASK}/a.quicklook.png"
    bootstrap.exports_store(aws)._s3.put_object(Bucket=aws.exports_bucket, Key=key, Body=png)
    look = StoredArtifact(
        type=ArtifactType.QUICKLOOK,
        name="a.quicklook.png",
        size=len(png),
        sha256="0" * 64,
        key=key,
        bounds=[-78.1, 24.3, -77.5, 24.8],
    )
    request = event("get_task")
    request["resource"] = "/export-tasks/{task_id}/quicklook"
    request["path"] += "/quicklook"
    store_task(aws, TaskStatus.IN_PROGRESS)
    running = invoke("get_task", monkeypatch, request)
    assert running["statusCode"] == 409 and "IN_PROGRESS" in running["body"]
    store_task(aws, TaskStatus.COMPLETED, artifacts=[look], expiredAt=datetime.now(UTC) + timedelta(days=1))
    answer = invoke("get_task", monkeypatch, request)
    assert answer["statusCode"] == 200, answer["body"]
    view = body(answer)
    assert view["dataUrl"] == "data:image/png;base64," + base64.b64encode(png).decode()
    assert (view["width"], view["height"]) == (300, 200) and view["crs"] == "EPSG:3857"
    assert view["coordinates"] == [[-78.1, 24.8], [-77.5, 24.8], [-77.5, 24.3], [-78.1, 24.3]]
    store_task(aws, TaskStatus.COMPLETED, expiredAt=datetime.now(UTC) + timedelta(days=1))  # a VECTOR export
    missing = invoke("get_task", monkeypatch, request)
    assert missing["statusCode"] == 404 and "no quicklook" in missing["body"]


def test_webhook_retry_drops_a_job_whose_task_is_gone(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    bootstrap.task_repository(aws)._db.delete_item(TableName=aws.tasks_table, Key={"id": {"S": str(TASK)}})
    assert invoke("webhook_retry", monkeypatch) == {"batchItemFailures": []}


def test_expiry_expires_what_is_due(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    artifact = StoredArtifact(
        type=ArtifactType.GPKG, name="a.gpkg", size=5, sha256="0" * 64, key="exports/x/a.gpkg"
    )
    store_task(
        aws, TaskStatus.COMPLETED, artifacts=[artifact], expiredAt=datetime.now(UTC) - timedelta(hours=1)
    )
    assert str(TASK) in invoke("expiry", monkeypatch)["expired"]
    assert bootstrap.task_repository(aws).get(TASK).status is TaskStatus.EXPIRED


def test_reconcile_restarts_a_task_that_never_started(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    then = datetime.now(UTC) - timedelta(hours=1)
    bootstrap.task_repository(aws)._db.delete_item(TableName=aws.tasks_table, Key={"id": {"S": str(TASK)}})
    task = store_task(aws, TaskStatus.PENDING)
    bootstrap.task_repository(aws)._db.update_item(
        TableName=aws.tasks_table,
        Key={"id": {"S": str(task.id)}},
        UpdateExpression="SET updatedAt = :u",
        ExpressionAttributeValues={":u": {"S": then.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}},
    )
    outcome = invoke("reconcile", monkeypatch)
    assert str(TASK) in outcome["resumed"]
    assert bootstrap.task_repository(aws).get(TASK).executionArn


def feature_post(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The sample POST /features event of the demo client, with the "city" model registered."""
    ensure_client(aws)
    invoke("feature_models", monkeypatch)  # the "city" model (or 409: it exists)
    create = event("features")
    create.update(httpMethod="POST", queryStringParameters=None, multiValueQueryStringParameters=None)
    create["requestContext"]["httpMethod"] = "POST"
    return create


def test_non_finite_numbers_in_properties_are_a_400(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: NaN, Infinity and 1e400 were stored as null with a 201."""
    create = feature_post(aws, monkeypatch)
    feature = {
        "type": "Feature",
        "id": "nowhere",
        "model": "city",
        "entityType": "DATA",
        "geometry": {"type": "Point", "coordinates": [18.95, 69.65]},
        "properties": {"name": "Nowhere", "pop": 1, "area": 1, "notes": [1, 2]},
    }
    create["body"] = (
        json.dumps(feature)
        .replace('"area": 1', '"area": 1e400')
        .replace('"notes": [1, 2]', '"notes": [1, NaN]')
    )
    answer = invoke("features", monkeypatch, create)
    assert answer["statusCode"] == 400, answer["body"]
    assert [e["field"] for e in body(answer)["errors"]] == ["properties.area", "properties.notes[1]"]


@pytest.mark.parametrize("revoke", ["disable", "delete"])
def test_a_disabled_or_deleted_client_loses_its_tokens(
    aws: Settings, monkeypatch: pytest.MonkeyPatch, revoke: str
) -> None:
    """Issue 12: a token kept working after its client was deleted."""
    clients = ClientRepository(bootstrap.aws.client("dynamodb", aws), aws.clients_table)
    client_id = f"revoked-by-{revoke}"
    created = clients.create("revocable", client_id=client_id)
    request = event("auth_token")
    request["body"] = json.dumps({"client_id": client_id, "client_secret": created.client_secret})
    issued = invoke("auth_token", monkeypatch, request)
    assert issued["statusCode"] == 200
    authorize = {**event("authorizer"), "authorizationToken": f"Bearer {body(issued)['access_token']}"}
    assert invoke("authorizer", monkeypatch, authorize)["principalId"] == client_id
    assert getattr(clients, revoke)(client_id)
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        invoke("authorizer", monkeypatch, authorize)
    assert invoke("auth_token", monkeypatch, request)["statusCode"] == 401  # and no new token


def test_definitions_schedule_run_once_per_firing_and_list_runs(
    aws: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample definition is saved with its schedule in the Scheduler group; a run now and a schedule's
    firing (delivered twice) make two tasks linked to it; a disabled owner's firing is refused, with why."""
    ensure_client(aws)
    put_sample_record(aws)
    created = invoke("definitions", monkeypatch)
    assert created["statusCode"] == 201, created["body"]
    definition = body(created)
    scheduler = bootstrap.aws.scheduler(aws)
    (schedule,) = scheduler.list_schedules(GroupName=aws.schedule_group)["Schedules"]
    detail = scheduler.get_schedule(Name=schedule["Name"], GroupName=aws.schedule_group)
    assert detail["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert detail["Target"]["Arn"] == aws.definition_run_queue_arn
    assert json.loads(detail["Target"]["Input"])["definitionId"] == definition["id"]

    run_now = event("definitions")
    run_now.update(
        httpMethod="POST",
        resource="/export-definitions/{definition_id}/run",
        path=f"/export-definitions/{definition['id']}/run",
        pathParameters={"definition_id": definition["id"]},
        body=None,
    )
    ran = invoke("definitions", monkeypatch, run_now)
    assert ran["statusCode"] == 201, ran["body"]
    task = bootstrap.task_repository(aws).get(body(ran)["taskId"])
    assert task.definitionId == UUID(definition["id"]) and [
        t.state for t in task.transportStates.values()
    ] == ["pending"]

    firing = event("definition_runs")
    message = json.loads(firing["Records"][0]["body"]) | {"definitionId": definition["id"]}
    firing["Records"][0]["body"] = json.dumps(message)
    assert invoke("definition_runs", monkeypatch, firing) == {"batchItemFailures": []}
    assert invoke("definition_runs", monkeypatch, firing) == {"batchItemFailures": []}  # delivered twice
    runs_event = {**run_now, "httpMethod": "GET", "resource": "/export-definitions/{definition_id}/runs"}
    runs_event["path"] = f"/export-definitions/{definition['id']}/runs"
    runs = body(invoke("definitions", monkeypatch, runs_event))["items"]
    assert sorted(r["cause"] for r in runs) == ["manual", "schedule"]
    assert all(r["outcome"] == "started" and r["taskStatus"] == "PENDING" for r in runs)

    db = bootstrap.aws.client("dynamodb", aws)
    assert ClientRepository(db, aws.clients_table).disable(CLIENT)
    try:
        # A firing after every run so far (the manual run is keyed by the time it ran: now).
        moment = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        later = json.loads(firing["Records"][0]["body"]) | {"scheduledTime": moment}
        firing["Records"][0]["body"] = json.dumps(later)
        assert invoke("definition_runs", monkeypatch, firing) == {"batchItemFailures": []}
    finally:  # enabled again for the tests after this one
        db.update_item(
            TableName=aws.clients_table, Key={"clientId": {"S": CLIENT}}, UpdateExpression="REMOVE disabled"
        )
    newest = body(invoke("definitions", monkeypatch, runs_event))["items"][0]
    assert newest["outcome"] == "refused" and newest["statusCode"] == 403 and "disabled" in newest["reason"]
    assert invoke("definition_runs", monkeypatch)["batchItemFailures"] == []  # the sample's is gone: nothing


def test_catalog_update_needs_its_scope_and_announces_the_new_version(
    aws: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_sample_record(aws)
    unscoped = event("catalog_update")
    unscoped["requestContext"]["authorizer"] = {"sub": CLIENT, "scope": "exports:read exports:write"}
    refused = invoke("catalog_update", monkeypatch, unscoped)
    assert refused["statusCode"] == 403 and "catalog:write" in body(refused)["message"]

    module = load("catalog_update", monkeypatch)
    current = bootstrap.catalog_repository(aws).get(RECORD)
    described: list[str] = []

    def describe(uri: str, record_id: UUID, name: str, location: SourceLocation, text: str) -> CatalogRecord:
        described.append(uri)  # GDAL cannot reach moto's in-process S3; this test is about the handler
        return current.model_copy(update={"source": location, "description": text})

    monkeypatch.setattr(module.updates, "_describe", describe)
    answer = module.lambda_handler(event("catalog_update"), Context())
    assert answer["statusCode"] == 200, answer["body"]
    assert described == [f"s3://{aws.sources_bucket}/uploads/sample-v2.tif"]
    stored = bootstrap.catalog_repository(aws).get(RECORD)
    assert stored.productVersion == "2" and stored.source.key == "uploads/sample-v2.tif"
    again = module.lambda_handler(event("catalog_update"), Context())  # already at version 2
    assert again["statusCode"] == 409 and body(again)["errors"][0]["field"] == "productVersion"


def test_transports_deliver_or_fail_with_a_reason(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """An email goes out through SES; a bucket outside TransportBucketPattern fails with the reason, the
    task stays COMPLETED, and a retry puts it back to pending."""
    from geoexport.models.tasks import Transport

    request = CreateExportTaskRequest.model_validate(
        json.loads(event("task_changes")["Records"][0]["dynamodb"]["NewImage"]["request"]["S"])
    )
    transports = [
        Transport(type="email", recipients=["ops@example.org"]),  # type: ignore[arg-type]
        Transport(type="s3", bucket="someone-elses-bucket"),  # type: ignore[arg-type]
    ]
    artifact = StoredArtifact(
        type=ArtifactType.METADATA, name="a.json", size=2, sha256="0" * 64, key="k/a.json"
    )
    bootstrap.exports_store(aws)._s3.put_object(Bucket=aws.exports_bucket, Key="k/a.json", Body=b"{}")
    from geoexport.models.tasks import TransportState, TransportStatus

    states = {
        str(i): TransportStatus(index=i, type=t.type, target=t.target(), state=TransportState.PENDING)
        for i, t in enumerate(transports)
    }
    store_task(
        aws,
        TaskStatus.COMPLETED,
        artifacts=[artifact],
        expiredAt=datetime.now(UTC) + timedelta(days=1),
        transportStates=states,
        request=request.model_copy(update={"transports": transports}),
    )
    assert invoke("transports", monkeypatch) == {"batchItemFailures": []}
    task = bootstrap.task_repository(aws).get(TASK)
    email, copy = task.transportStates["0"], task.transportStates["1"]
    assert email.state == "done" and email.delivered, email
    assert copy.state == "failed" and "geoexport-drop-*" in (copy.reason or "") and task.status == "COMPLETED"
    sent = bootstrap.aws.ses(aws).get_send_statistics()["SendDataPoints"]
    assert sum(point["DeliveryAttempts"] for point in sent) >= 1

    retry = event("replay_callbacks")
    retry["path"] = retry["path"].replace("callbacks:replay", "transports:retry")
    retry["pathParameters"] = {**retry["pathParameters"], "action": "transports:retry"}
    answer = invoke("replay_callbacks", monkeypatch, retry)
    assert answer["statusCode"] == 202 and [r["index"] for r in body(answer)["retried"]] == [1]
    assert bootstrap.task_repository(aws).get(TASK).transportStates["1"].state == "pending"


def test_the_web_tool_serves_its_files_and_nothing_outside_them(monkeypatch: pytest.MonkeyPatch) -> None:
    def header(answer: dict[str, Any], name: str) -> str:
        return str(answer["multiValueHeaders"][name][0])

    web = load("web", monkeypatch)
    css = web.lambda_handler(event("web"), Context())
    assert css["statusCode"] == 200 and header(css, "Content-Type").startswith("text/css")
    assert "maplibregl" in css["body"] and "immutable" in header(css, "Cache-Control")
    index = web.lambda_handler({**event("web"), "path": "/", "resource": "/"}, Context())
    assert index["statusCode"] == 200 and "static/app.js" in index["body"]
    assert "default-src 'self'" in header(index, "Content-Security-Policy")
    basemap = web.lambda_handler({**event("web"), "path": "/static/countries.geojson"}, Context())
    assert basemap["statusCode"] == 200 and len(json.loads(basemap["body"])["features"]) == 177
    for outside in ("/static/../app.py", "/static/vendor/../../app.py", "/static/missing.js"):
        assert web.lambda_handler({**event("web"), "path": outside}, Context())["statusCode"] == 404


def test_ogc_api_features_reads_the_callers_features(aws: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: OGC API - Features over the repository, links absolute under the stage the caller used."""
    create = feature_post(aws, monkeypatch)
    feature = {
        "type": "Feature", "id": f"ogc-{uuid4().hex[:8]}", "model": "city", "entityType": "DATA",
        "geometry": {"type": "Point", "coordinates": [-75.5, 25.5]},
        "properties": {"name": "Ogcville", "pop": 20, "area": 3},
    }  # fmt: skip
    create["body"] = json.dumps(feature)
    created = invoke("features", monkeypatch, create)
    assert created["statusCode"] == 201, created["body"]
    urn = body(created)["urn"]
    request = event("ogc_features")
    request["pathParameters"] = {"collection_id": "city"}
    request["path"], request["requestContext"]["path"] = (
        "/ogc/collections/city/items",
        "/v1/ogc/collections/city/items",
    )
    for text, found in (("pop > 10 AND name LIKE 'Ogc%'", True), ("pop > 100", False)):
        request["queryStringParameters"] = {"bbox": "-80,20,-70,30", "limit": "10", "filter": text}
        answer = invoke("ogc_features", monkeypatch, request)
        assert answer["statusCode"] == 200, answer["body"]
        page = body(answer)
        assert page["type"] == "FeatureCollection" and (urn in [f["id"] for f in page["features"]]) is found
        assert page["links"][0]["href"].startswith("http://127.0.0.1:3000/v1/ogc/collections/city/items?")
    request["queryStringParameters"] = {"filter": "pop >> 1"}
    refused = invoke("ogc_features", monkeypatch, request)
    assert refused["statusCode"] == 400 and body(refused)["errors"][0]["field"] == "filter"
    one = dict(request, path=f"/ogc/collections/city/items/{urn}", queryStringParameters=None)
    one["pathParameters"] = {"collection_id": "city", "feature_id": urn}
    one["resource"] = "/ogc/collections/{collection_id}/items/{feature_id}"
    item = invoke("ogc_features", monkeypatch, one)
    assert item["statusCode"] == 200 and body(item)["properties"]["name"] == "Ogcville"
    conformance = dict(request, path="/ogc/conformance", resource="/ogc/conformance", pathParameters=None)
    classes = body(invoke("ogc_features", monkeypatch, conformance))["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
