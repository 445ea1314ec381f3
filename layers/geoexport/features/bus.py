"""Where the messaging doors talk back: outcome events on EventBridge, unreadable messages to a queue (the
feature requests' bus, and the exports' bus for export requests and task status changes)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from geoexport.errors import TransientError
from geoexport.features.requests import OUTCOME_SOURCE

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient


class EventBusPublisher:
    def __init__(self, events_client: EventBridgeClient, bus_name: str, source: str = OUTCOME_SOURCE) -> None:
        self._events = events_client
        self._bus = bus_name
        self._source = source

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        answer = self._events.put_events(
            Entries=[
                {
                    "EventBusName": self._bus,
                    "Source": self._source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                }
            ]
        )
        if answer.get("FailedEntryCount"):
            raise TransientError(f"EventBridge refused the {detail_type} event: {answer['Entries'][0]}")


class SqsDeadLetters:
    def __init__(self, sqs_client: SQSClient, queue_url: str) -> None:
        self._sqs = sqs_client
        self._url = queue_url

    def park(self, body: str, reason: str) -> None:
        """The message as it came, and why it is not a request (also as an attribute, to filter on)."""
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=json.dumps({"reason": reason, "message": body}),
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000] or "unknown"}},
        )


class SqsTaskQueue:
    """A queue of task ids (the transports' work)."""

    def __init__(self, sqs_client: SQSClient, queue_url: str) -> None:
        self._sqs = sqs_client
        self._url = queue_url

    def send(self, task_id: str) -> None:
        self._sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps({"taskId": task_id}))
