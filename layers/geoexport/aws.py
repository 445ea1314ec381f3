"""boto3 client construction in one place, so every adapter talks to the same endpoint and region.

One boto3 session per execution environment and one client per service, made on first use and shared by
every adapter: a session and its clients are costly to build (measured: 7 clients on 7 sessions 0.8-1.1 s,
on one session 0.3-0.4 s) and boto3 clients are thread-safe once built.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from geoexport.errors import TransientError
from geoexport.settings import AwsSettings

if TYPE_CHECKING:  # boto3-stubs (a development dependency): the typed client of each service used
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    # Emulators (and S3-compatible stores) may not accept the CRC checksums botocore >= 1.36 adds.
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
    s3={"addressing_style": "path"},
    signature_version="s3v4",  # presigned links: SigV4 (SigV2 is deprecated and unsupported in new regions)
)
#: DynamoDB's requests are built by this code from validated models, and DynamoDB checks them again:
#: botocore's client-side walk of every attribute value was ~40% of a write's CPU (a 99-item transaction,
#: measured), the largest single cost of loading features. Other services keep it.
_UNCHECKED = _CONFIG.merge(Config(parameter_validation=False))
_CONFIGS = {"dynamodb": _UNCHECKED}

_lock = threading.Lock()
_sessions: dict[str, Any] = {}
_clients: dict[tuple[str, str, str | None], Any] = {}


def session() -> Any:
    """The execution environment's one boto3 session, made on first use (botocore then resolves its
    credentials once, for every client and for rasterio: see geoexport.raster.source)."""
    found = _sessions.get("default")
    if found is not None:
        return found
    import boto3

    with _lock:
        found = _sessions.get("default")
        if found is None:
            found = _sessions["default"] = boto3.session.Session()
    return found


def client(service: str, settings: AwsSettings) -> Any:
    """The shared boto3 client for ``service`` at the configured endpoint (an emulator locally, AWS
    otherwise)."""
    key = (service, settings.region, settings.aws_endpoint_url)
    found = _clients.get(key)
    if found is not None:
        return found
    shared = session()  # Any: the service below is a runtime string, which the stubs cannot type
    with _lock:  # a boto3 session is not thread-safe while it builds clients
        found = _clients.get(key)
        if found is None:
            found = _clients[key] = shared.client(
                service,
                region_name=settings.region,
                endpoint_url=settings.aws_endpoint_url,
                config=_CONFIGS.get(service, _CONFIG),
            )
    return found


def reset() -> None:
    """Forget the shared session and clients: the next call resolves credentials again. Only a process
    whose credentials change needs it (a test session after in-process mocks); a Lambda never does."""
    with _lock:
        _sessions.clear()
        _clients.clear()


def dynamodb(settings: AwsSettings) -> DynamoDBClient:
    return cast("DynamoDBClient", client("dynamodb", settings))


def s3(settings: AwsSettings) -> S3Client:
    return cast("S3Client", client("s3", settings))


def sqs(settings: AwsSettings) -> SQSClient:
    return cast("SQSClient", client("sqs", settings))


def stepfunctions(settings: AwsSettings) -> SFNClient:
    return cast("SFNClient", client("stepfunctions", settings))


def lambda_(settings: AwsSettings) -> LambdaClient:
    return cast("LambdaClient", client("lambda", settings))


def events(settings: AwsSettings) -> EventBridgeClient:
    return cast("EventBridgeClient", client("events", settings))


def ses(settings: AwsSettings) -> SESClient:
    return cast("SESClient", client("ses", settings))


def scheduler(settings: AwsSettings) -> EventBridgeSchedulerClient:
    return cast("EventBridgeSchedulerClient", client("scheduler", settings))


def secretsmanager(settings: AwsSettings) -> SecretsManagerClient:
    return cast("SecretsManagerClient", client("secretsmanager", settings))


#: Error codes AWS services answer when the same call may succeed later.
RETRYABLE_CODES = frozenset(
    {
        "InternalServerError",
        "InternalFailure",
        "ItemCollectionSizeLimitExceededException",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "SlowDown",
        "ThrottlingException",
        "TransactionConflictException",
    }
)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """AWS failures that may pass (throttling, a dropped connection, a 5xx) become TransientError, which
    the API answers with 503 and the state machine retries; every other error (a failed condition, a
    missing table) propagates unchanged for the caller to handle."""
    try:
        yield
    except BotoCoreError as error:
        raise TransientError(f"{what}: {error}") from error
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in RETRYABLE_CODES or status >= 500:
            raise TransientError(f"{what}: {code or status}") from error
        raise
