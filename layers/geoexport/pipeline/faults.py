"""Fault injection for tests and game days, switched on by the environment (off by default).

``GEOEXPORT_FAULTS="Clip:transient:1,Package:delay:3,Upload:timeout:1,Notify:garbage"``:
- ``transient:N``: the step's first N runs for each task raise TransientError (the state machine retries);
- ``permanent``: every run raises InjectedFault (not retried: the task ends FAILED naming the step);
- ``delay:S``: the step sleeps S seconds first (room to abort a running export);
- ``timeout:N``: the step's first N runs for each task hang past the function's timeout (Lambda ends them
  with ``Sandbox.Timedout``; the state machine retries once);
- ``garbage``: the step returns a result the next step cannot use.
Counts are per process (per Lambda container on AWS, where a retry after a timeout may get a fresh one).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from geoexport.errors import GeoexportError, TransientError

KINDS = {"transient", "permanent", "delay", "garbage", "timeout"}


class InjectedFault(GeoexportError):
    """A fault the GEOEXPORT_FAULTS switch asked for."""


@dataclass(frozen=True)
class Fault:
    kind: str
    arg: float


def parse(spec: str) -> dict[str, Fault]:
    faults: dict[str, Fault] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        step, _, rest = item.partition(":")
        kind, _, arg = rest.partition(":")
        if kind not in KINDS or not step:
            raise ValueError(
                f"GEOEXPORT_FAULTS: cannot read {item!r} (step:kind[:arg], kinds {sorted(KINDS)})"
            )
        faults[step] = Fault(kind, float(arg or 1))
    return faults


#: Runs per (step, task) in this process, shared by every Faults instance: the local function host imports
#: a handler again for each concurrent "container", and a retry after a timeout lands on another one while
#: the hung one still sleeps; a count per instance made the timeout fault fire again on the retry.
_RUNS: dict[tuple[str, str], int] = defaultdict(int)
_RUNS_LOCK = threading.Lock()


class Faults:
    def __init__(self, spec: str) -> None:
        self._faults = parse(spec)
        self._runs = _RUNS
        self._lock = _RUNS_LOCK

    def before(self, step: str, task_id: str, remaining_seconds: float = 0.0) -> None:
        fault = self._faults.get(step)
        if fault is None:
            return
        with self._lock:
            self._runs[(step, task_id)] += 1
            run = self._runs[(step, task_id)]
        if fault.kind == "delay":
            time.sleep(fault.arg)
        elif fault.kind == "transient" and run <= fault.arg:
            raise TransientError(f"injected transient fault in {step} (run {run})")
        elif fault.kind == "timeout" and run <= fault.arg:
            time.sleep(remaining_seconds + 1.0)  # the runtime ends the invocation before this returns
            raise InjectedFault(f"injected hang in {step} outlived its timeout")
        elif fault.kind == "permanent":
            raise InjectedFault(f"injected permanent fault in {step}")

    def after(self, step: str, result: dict[str, Any]) -> dict[str, Any]:
        fault = self._faults.get(step)
        if fault is not None and fault.kind == "garbage":
            return {key: "garbage" for key in result} | {"taskId": result.get("taskId")}
        return result
