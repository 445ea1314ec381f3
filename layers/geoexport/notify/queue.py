"""The retry queue behind webhook delivery: an SQS queue (delayed messages) and its dead-letter queue."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from geoexport.notify.delivery import DeliveryJob

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: SQS delays one message by at most 15 minutes; a longer wait takes several hops.
MAX_DELAY_SECONDS = 900


class SqsDeliveryQueue:
    def __init__(
        self, sqs: SQSClient, queue_url: str, dead_letter_url: str, clock: Callable[[], datetime]
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._dead_letter_url = dead_letter_url
        self._clock = clock

    def schedule(self, job: DeliveryJob) -> None:
        wait = (job.dueAt - self._clock()).total_seconds()
        delay = min(MAX_DELAY_SECONDS, max(0, math.ceil(wait)))
        self._sqs.send_message(
            QueueUrl=self._queue_url, MessageBody=job.model_dump_json(), DelaySeconds=delay
        )

    def dead_letter(self, body: str, reason: str) -> None:
        """Park an undeliverable job with why; operators (or a replay) take it from there."""
        self._sqs.send_message(
            QueueUrl=self._dead_letter_url,
            MessageBody=json.dumps({"reason": reason, "job": body}),
        )
