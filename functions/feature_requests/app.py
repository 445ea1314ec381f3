"""Messaging API: feature create/patch/delete requests from the queue (EventBridge rule or direct sends)."""

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.settings import Settings

settings = Settings.from_environ(os.environ)
logger = Logger()
requests = bootstrap.feature_requests(settings)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """HIGH-priority requests of the batch first; a request that failed inside stays on the queue."""
    records = event.get("Records", [])
    failures = []
    for message_id, request in requests.take([(r["messageId"], r["body"]) for r in records]):
        try:
            outcome = requests.handle(request)
        except Exception:
            logger.exception("feature request failed; SQS delivers it again", extra={"messageId": message_id})
            failures.append({"itemIdentifier": message_id})
            continue
        logger.info(
            "feature request",
            extra={"requestId": outcome.requestId, "state": outcome.state.value, "urn": outcome.urn},
        )
    return {"batchItemFailures": failures}
