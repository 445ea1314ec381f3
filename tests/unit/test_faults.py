"""The fault-injection switch: each kind does what GEOEXPORT_FAULTS promises, and only where it is asked."""

from __future__ import annotations

import time

import pytest

from geoexport.errors import TransientError
from geoexport.pipeline.faults import Faults, InjectedFault


def test_transient_faults_fail_the_first_runs_per_task_only() -> None:
    faults = Faults("Clip:transient:2")
    for _ in range(2):
        with pytest.raises(TransientError):
            faults.before("Clip", "t1")
    faults.before("Clip", "t1")  # third run passes
    with pytest.raises(TransientError):
        faults.before("Clip", "t2")  # counted per task
    faults.before("Package", "t1")  # other steps untouched
    Faults("Clip:transient:2").before("Clip", "t1")  # another instance (a second local "container") too


def test_permanent_timeout_and_garbage() -> None:
    faults = Faults("Package:permanent,Upload:timeout:1,Notify:garbage")
    with pytest.raises(InjectedFault):
        faults.before("Package", "t")
    started = time.monotonic()
    with pytest.raises(InjectedFault, match="outlived its timeout"):
        faults.before("Upload", "t", remaining_seconds=0.2)
    assert time.monotonic() - started >= 1.2  # hung past the remaining time
    faults.before("Upload", "t", remaining_seconds=0.2)  # only the first run hangs
    assert faults.after("Notify", {"taskId": "t", "planKey": "k"}) == {"taskId": "t", "planKey": "garbage"}
    assert faults.after("Clip", {"taskId": "t", "planKey": "k"}) == {"taskId": "t", "planKey": "k"}


def test_a_misspelt_switch_is_refused_at_cold_start() -> None:
    with pytest.raises(ValueError, match="step:kind"):
        Faults("Clip:explode")
