"""Webhook delivery over real HTTP: JSON POST, bounded timeout, redirects never followed."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from geoexport.models.tasks import WebhookDelivery, WebhookEvent


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is reported as the outcome, never followed


class WebhookSender:
    def __init__(
        self,
        timeout_seconds: float,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._timeout = timeout_seconds
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(self, url: str, event: WebhookEvent, body: dict[str, Any]) -> WebhookDelivery:
        data = json.dumps(body, default=str).encode()
        status: int | None = None
        error: str | None = None
        for attempt in range(self._attempts):
            request = urllib.request.Request(
                url,
                data=data,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "geoexport-webhooks/1"},
            )
            try:
                with self._opener.open(request, timeout=self._timeout) as response:
                    status, error = response.status, None
            except urllib.error.HTTPError as failure:
                status, error = failure.code, f"HTTP {failure.code}"
            except (urllib.error.URLError, OSError) as failure:
                status, error = None, str(getattr(failure, "reason", failure))
            if status is not None and status < 300:
                break
            if status is not None and 300 <= status < 500 and status != 429:
                break  # the receiver refused it; repeating will not help
            if attempt + 1 < self._attempts:
                self._sleep(self._backoff * 2**attempt)
        return WebhookDelivery(
            url=url, event=event, statusCode=status, error=error, deliveredAt=datetime.now(UTC)
        )
