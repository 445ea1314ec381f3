"""Webhook delivery: signed (Standard Webhooks), SSRF-guarded, bounded timeout, redirects never followed.

Each request carries ``webhook-id`` (stable per task and event, so a receiver can drop repeats),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
``{id}.{timestamp}.{body}`` with the owning client's secret (``whsec_`` + base64 key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from geoexport.models.tasks import DeliveryOutcome, WebhookDelivery, WebhookEvent
from geoexport.notify.ssrf import BlockedDestination, connection, resolve


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


class WebhookSender:
    def __init__(
        self,
        timeout_seconds: float,
        attempts: int = 1,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        allow_loopback: bool = False,
        https_only: bool = False,
    ) -> None:
        self._timeout = timeout_seconds
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._allow_loopback = allow_loopback
        self._https_only = https_only

    def send(
        self,
        url: str,
        event: WebhookEvent,
        body: dict[str, Any],
        message_id: str = "",
        secret: str | None = None,
    ) -> WebhookDelivery:
        if not secret:  # the owning client was deleted: nobody could verify it, and it must not look ours
            return WebhookDelivery(
                url=url,
                event=event,
                deliveredAt=datetime.now(UTC),
                outcome=DeliveryOutcome.REFUSED,
                attempts=0,
                error="not sent: the owning client no longer exists, and callbacks are never sent unsigned",
            )
        data = json.dumps(body, default=str).encode()
        status: int | None = None
        error: str | None = None
        outcome = DeliveryOutcome.RETRYING
        for attempt in range(self._attempts):
            try:
                # Resolved and checked on every attempt: the answer may have changed (DNS rebinding).
                destination = resolve(url, self._allow_loopback, self._https_only)
            except BlockedDestination as refused:
                status, error, outcome = None, f"refused: {refused}", DeliveryOutcome.REFUSED
                break
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "geoexport-webhooks/1",
                "webhook-id": message_id or f"msg_{timestamp}",
                "webhook-timestamp": str(timestamp),
            }
            if secret:
                headers["webhook-signature"] = sign(secret, headers["webhook-id"], timestamp, data)
            conn = connection(destination, self._timeout)
            try:
                conn.request("POST", destination.target, body=data, headers=headers)
                response = conn.getresponse()
                response.read()
                status, error = response.status, None if response.status < 300 else f"HTTP {response.status}"
            except (OSError, ValueError) as failure:
                status, error = None, str(failure) or type(failure).__name__
            finally:
                conn.close()
            if status is not None and 200 <= status < 300:
                outcome = DeliveryOutcome.DELIVERED
                break
            # Anything else (redirects are never followed, 4xx, 5xx, no answer) is tried again later,
            # as Standard Webhooks senders do: the receiver may be fixed or back by then.
            if attempt + 1 < self._attempts:
                self._sleep(self._backoff * 2**attempt)
        return WebhookDelivery(
            url=url,
            event=event,
            statusCode=status,
            error=error,
            deliveredAt=datetime.now(UTC),
            outcome=outcome,
        )
