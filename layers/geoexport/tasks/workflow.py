"""Starting the export state machine (Step Functions adapter)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from geoexport.errors import ServiceUnavailable


class StepFunctionsWorkflow:
    def __init__(self, sfn_client: Any, state_machine_arn: str) -> None:
        self._sfn = sfn_client
        self._arn = state_machine_arn

    def start(self, task_id: UUID) -> str:
        """Start one execution named after the task, so a repeated start cannot run the export twice."""
        try:
            response = self._sfn.start_execution(
                stateMachineArn=self._arn, name=str(task_id), input=json.dumps({"taskId": str(task_id)})
            )
        except self._sfn.exceptions.ExecutionAlreadyExists:
            return f"{self._arn.replace(':stateMachine:', ':execution:')}:{task_id}"
        except Exception as error:
            raise ServiceUnavailable("the export workflow could not be started; try again") from error
        arn: str = response["executionArn"]
        return arn
