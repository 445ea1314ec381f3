"""errorReason: actionable for known failures, generic (no internals) for bugs."""

import json

from geoexport.pipeline.notify import error_reason


def cause(kind: str, message: str) -> dict[str, str]:
    return {
        "Error": kind,
        "Cause": json.dumps({"errorType": kind, "errorMessage": message, "stackTrace": ["secret internals"]}),
    }


def test_known_failure_quotes_the_message_and_names_the_step() -> None:
    reason = error_reason(
        "Package", cause("SourceUnreadable", "the source raster's pixels cannot be read"), "t1"
    )
    assert reason == "Package step failed: the source raster's pixels cannot be read"


def test_unexpected_error_hides_internals_and_names_the_task() -> None:
    reason = error_reason("Clip", cause("KeyError", "'x'"), "t1")
    assert "Clip step failed" in reason
    assert "KeyError" in reason and "t1" in reason
    assert "secret" not in reason and "'x'" not in reason


def test_timeout_suggests_a_smaller_request() -> None:
    assert "smaller ROI" in error_reason("Package", {"Error": "States.Timeout", "Cause": ""}, "t1")
