"""API Gateway usage plans on the local stack: per-key throttle (token bucket) and daily quota.

The plans live in the emulator's API Gateway (provisioned from template.yaml); keys are enrolled with the
same calls as on AWS (`geoexport client create`). A request on a route that requires a key is counted
against the plan of the key the authorizer names, and refused as API Gateway refuses it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CACHE_SECONDS = 5.0


@dataclass
class Plan:
    rate: float
    burst: float
    quota: int | None


@dataclass
class Meter:
    plan: Plan
    tokens: float
    stamp: float
    day: str = ""
    used_today: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class UsageMeter:
    def __init__(self, apigateway: Any, clock: Any = time.monotonic) -> None:
        self._api = apigateway
        self._clock = clock
        self._plans: dict[str, tuple[float, Plan | None]] = {}
        self._meters: dict[str, Meter] = {}
        self._lock = threading.Lock()

    def _plan(self, key: str) -> Plan | None:
        now = self._clock()
        cached = self._plans.get(key)
        if cached and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        plan: Plan | None = None
        keys = self._api.get_api_keys(includeValues=True, limit=500).get("items", [])
        key_id = next((k["id"] for k in keys if k.get("value") == key and k.get("enabled", True)), None)
        if key_id:
            plans = self._api.get_usage_plans(keyId=key_id).get("items", [])
            if plans:
                throttle, quota = plans[0].get("throttle", {}), plans[0].get("quota", {})
                plan = Plan(
                    rate=float(throttle.get("rateLimit", 10_000)),
                    burst=float(throttle.get("burstLimit", 5_000)),
                    quota=int(quota["limit"]) if "limit" in quota else None,
                )
        self._plans[key] = (now, plan)
        return plan

    def check(self, key: str | None) -> tuple[int, dict[str, Any]] | None:
        """None to let the request through, else API Gateway's refusal (status, body)."""
        plan = self._plan(key) if key else None
        if plan is None or key is None:
            return 403, {"message": "Forbidden"}  # no key, or one in no usage plan
        with self._lock:
            meter = self._meters.get(key)
            if meter is None or meter.plan != plan:
                meter = self._meters[key] = Meter(plan, plan.burst, self._clock())
        with meter.lock:
            now = self._clock()
            meter.tokens = min(plan.burst, meter.tokens + (now - meter.stamp) * plan.rate)
            meter.stamp = now
            today = datetime.now(UTC).strftime("%Y-%m-%d")
            if meter.day != today:
                meter.day, meter.used_today = today, 0
            if plan.quota is not None and meter.used_today >= plan.quota:
                return 429, {"message": "Limit Exceeded"}
            if meter.tokens < 1:
                return 429, {"message": "Too Many Requests"}
            meter.tokens -= 1
            meter.used_today += 1
        return None
