"""Starting the export state machine (Step Functions adapter)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from geoexport.errors import ServiceUnavailable, TransientError
from geoexport.geometry.planar import GeometryProblem

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_stepfunctions import SFNClient

RESUME_MARK = "-resume-"
CONTINUE_MARK = "-continue-"
PAUSED_OUTPUT = {"paused": True}  # the state machine's Paused state's output


class ExecutionState(StrEnum):
    """Step Functions' execution statuses, plus MISSING: no such execution (never started, or lost with a
    local emulator that restarted)."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    PAUSED = "PAUSED"  # SUCCEEDED at the state machine's Paused state: the task was paused
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"
    PENDING_REDRIVE = "PENDING_REDRIVE"
    MISSING = "MISSING"


def resume_count(execution_arn: str | None) -> int:
    """How often a task's workflow was started again: its execution is named ``<task id>-resume-N``."""
    if not execution_arn or RESUME_MARK not in execution_arn:
        return 0
    suffix = execution_arn.rsplit(RESUME_MARK, 1)[1]
    return int(suffix) if suffix.isdigit() else 0


def continue_count(execution_arn: str | None) -> int:
    """How often a paused task was resumed: its execution is named ``<task id>-continue-K[-resume-N]``."""
    if not execution_arn or CONTINUE_MARK not in execution_arn:
        return 0
    digits = execution_arn.rsplit(CONTINUE_MARK, 1)[1].split("-", 1)[0]
    return int(digits) if digits.isdigit() else 0


class StepFunctionsWorkflow:
    def __init__(self, sfn_client: SFNClient, state_machine_arn: str) -> None:
        self._sfn = sfn_client
        self._arn = state_machine_arn

    def start(self, task_id: UUID | str, resume: int = 0, continued: int = 0) -> str:
        """Start one execution named after the task, its resumes after a pause (``continued``) and restarts
        after an interruption (``resume``), so a repeated start cannot run the export twice."""
        name = str(task_id) + (f"{CONTINUE_MARK}{continued}" if continued else "")
        name += f"{RESUME_MARK}{resume}" if resume else ""
        try:
            response = self._sfn.start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps({"taskId": str(task_id)})
            )
        except self._sfn.exceptions.ExecutionAlreadyExists:
            return f"{self._arn.replace(':stateMachine:', ':execution:')}:{name}"
        except Exception as error:
            raise ServiceUnavailable("the export workflow could not be started; try again") from error
        arn: str = response["executionArn"]
        return arn

    def state(self, execution_arn: str) -> ExecutionState:
        try:
            described = self._sfn.describe_execution(executionArn=execution_arn)
        except self._sfn.exceptions.ExecutionDoesNotExist:
            return ExecutionState.MISSING
        except Exception as error:
            raise TransientError(f"describe execution {execution_arn}: {error}") from error
        status = described["status"]
        if status == "SUCCEEDED" and json.loads(described.get("output") or "{}") == PAUSED_OUTPUT:
            return ExecutionState.PAUSED
        try:
            return ExecutionState(status)
        except ValueError:
            return ExecutionState.RUNNING  # a status this code does not know yet: leave it alone

    def stop(self, execution_arn: str, cause: str) -> None:
        """Stop a running execution; one that already ended is left as it is."""
        try:
            self._sfn.stop_execution(executionArn=execution_arn, error="Aborted", cause=cause)
        except Exception:  # the task's own status already says ABORTED, and the steps honour it
            return


class LambdaNotifier:
    """Runs the Notify function asynchronously (an abort must not wait for webhook receivers)."""

    def __init__(self, lambda_client: LambdaClient, function_name: str) -> None:
        self._lambda = lambda_client
        self._function = function_name

    def notify_async(self, payload: dict[str, Any]) -> None:
        try:
            self._lambda.invoke(
                FunctionName=self._function, InvocationType="Event", Payload=json.dumps(payload).encode()
            )
        except Exception as error:
            raise ServiceUnavailable(
                "the abort was recorded but its callbacks could not be queued"
            ) from error


class LambdaGeometry:
    """GEOS repairs and CRS checks from the geometry function (the API itself stays free of numpy)."""

    def __init__(self, lambda_client: LambdaClient, function_name: str) -> None:
        self._lambda = lambda_client
        self._function = function_name

    def _call(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._lambda.invoke(FunctionName=self._function, Payload=json.dumps(payload).encode())
            answer: dict[str, Any] = json.loads(response["Payload"].read() or b"{}")
        except Exception as error:
            raise ServiceUnavailable("the geometry service is unavailable; try again") from error
        if response.get("FunctionError"):
            raise ServiceUnavailable("the geometry service failed; try again")
        return answer

    def repair(self, geometry: dict[str, Any]) -> tuple[dict[str, Any], str]:
        answer = self._call({"op": "repair", "geometry": geometry})
        if answer.get("problem"):
            raise GeometryProblem(str(answer["problem"]))
        return answer["geometry"], str(answer["how"])

    def crs_problem(self, code: str) -> str | None:
        problem = self._call({"op": "crs", "code": code}).get("problem")
        return str(problem) if problem else None
