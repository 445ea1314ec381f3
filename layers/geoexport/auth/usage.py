"""Per-client rate limits: API Gateway usage plans, keyed by the authorizer (ApiKeySourceType AUTHORIZER).

The authorizer answers each request with ``usageIdentifierKey`` = :func:`usage_key` of the caller; API
Gateway counts the request against the usage plan that key is enrolled in (its throttle and daily quota),
and answers 429 beyond them. Keys are derived from the client id, so the authorizer needs no lookup; they
identify a plan, they do not authenticate anyone (the bearer token does).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient

#: The plans template.yaml declares; a client is enrolled in one of them.
PLANS = ("standard", "restricted")


def usage_key(client_id: str) -> str:
    """API Gateway key value for a client (20 to 128 characters, stable, not a secret)."""
    return "gxk-" + hashlib.sha256(f"geoexport-usage:{client_id}".encode()).hexdigest()[:40]


class UsagePlans:
    """Enrols clients' keys in usage plans (API Gateway's API, on AWS or in the emulator)."""

    def __init__(self, apigateway_client: APIGatewayClient, plan_ids: dict[str, str]) -> None:
        self._api = apigateway_client
        self._plan_ids = plan_ids

    def enroll(self, client_id: str, plan: str) -> str:
        if plan not in self._plan_ids:
            raise ValueError(f"no usage plan {plan!r} (known: {', '.join(sorted(self._plan_ids))})")
        key = self._api.create_api_key(
            name=f"geoexport-{client_id}", value=usage_key(client_id), enabled=True
        )
        self._api.create_usage_plan_key(usagePlanId=self._plan_ids[plan], keyId=key["id"], keyType="API_KEY")
        return str(key["id"])
