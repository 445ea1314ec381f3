"""A definition's schedules as EventBridge Scheduler schedules (created at run time, in the stack's group).

Each schedule sends the definition run queue ``{"definitionId", "cause", "scheduledTime"}``: Scheduler fills
``<aws.scheduler.scheduled-time>`` in, which makes the run's key, so a delivery repeated by Scheduler or SQS
makes one run. A source change is a one-time ``at()`` schedule named ``<id>-change``: while it waits, more
changes find it there (ConflictException) and add nothing, so a burst makes one run. The local stack runs
the same schedules from the emulator's Scheduler (geoexport_local.schedules).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from geoexport import aws
from geoexport.definitions.models import ExportDefinition, RunCause

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_scheduler.type_defs import TargetTypeDef

SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
CHANGE = "change"


class SchedulerSchedules:
    def __init__(self, client: EventBridgeSchedulerClient, group: str, queue_arn: str, role_arn: str) -> None:
        self._client = client
        self._group = group
        self._queue = queue_arn
        self._role = role_arn

    def _target(self, definition_id: UUID, cause: RunCause) -> TargetTypeDef:
        body = {"definitionId": str(definition_id), "cause": cause.value, "scheduledTime": SCHEDULED_TIME}
        return {"Arn": self._queue, "RoleArn": self._role, "Input": json.dumps(body)}

    def _names(self, definition_id: UUID) -> list[str]:
        names: list[str] = []
        with aws.translated("listing the definition's schedules"):
            paginator = self._client.get_paginator("list_schedules")
            for page in paginator.paginate(GroupName=self._group, NamePrefix=f"{definition_id}-"):
                names += [s["Name"] for s in page["Schedules"] if not s["Name"].endswith(f"-{CHANGE}")]
        return names

    def _delete(self, name: str) -> None:
        with aws.translated("deleting a schedule"):
            try:
                self._client.delete_schedule(Name=name, GroupName=self._group)
            except self._client.exceptions.ResourceNotFoundException:
                pass

    def sync(self, definition: ExportDefinition) -> None:
        """The definition's schedules exactly as it says now (disabled definitions keep theirs, disabled)."""
        for name in self._names(definition.id):
            self._delete(name)
        for index, expression in enumerate(definition.schedules):
            with aws.translated("creating a schedule"):
                self._client.create_schedule(
                    Name=f"{definition.id}-{index}",
                    GroupName=self._group,
                    ScheduleExpression=expression,
                    ScheduleExpressionTimezone="UTC",
                    FlexibleTimeWindow={"Mode": "OFF"},
                    State="ENABLED" if definition.enabled else "DISABLED",
                    Target=self._target(definition.id, RunCause.SCHEDULE),
                    Description=f"export definition {definition.name}"[:512],
                )

    def remove(self, definition_id: UUID) -> None:
        for name in self._names(definition_id):
            self._delete(name)
        self._delete(f"{definition_id}-{CHANGE}")

    def coalesce(self, definition_id: UUID, at: datetime) -> bool:
        """A run at ``at`` for a source change; False when one is already waiting (it covers this change)."""
        with aws.translated("scheduling a run for a source change"):
            try:
                self._client.create_schedule(
                    Name=f"{definition_id}-{CHANGE}",
                    GroupName=self._group,
                    ScheduleExpression=f"at({at:%Y-%m-%dT%H:%M:%S})",
                    ScheduleExpressionTimezone="UTC",
                    FlexibleTimeWindow={"Mode": "OFF"},
                    ActionAfterCompletion="DELETE",
                    Target=self._target(definition_id, RunCause.SOURCE_CHANGE),
                )
            except self._client.exceptions.ConflictException:
                return False
        return True

    def change_handled(self, definition_id: UUID) -> None:
        """The waiting source-change run is starting: later changes schedule a new one."""
        self._delete(f"{definition_id}-{CHANGE}")
