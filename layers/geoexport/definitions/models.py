"""Export definitions (easydb's saved exports): a named export request that runs again, on demand, on
schedules, or when its source changes; each run is an ordinary export task linked to the definition."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from geoexport.models.tasks import (
    MAX_TRANSPORTS,
    CreateExportTaskRequest,
    Domain,
    Transport,
)

MAX_SCHEDULES = 5

_RATE = re.compile(r"^rate\((?P<value>[1-9][0-9]{0,5}) (?P<unit>minute|minutes|hour|hours|day|days)\)$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?,/#LW-]+$")


def schedule_problem(expression: str) -> str | None:
    """Why an EventBridge Scheduler expression is not a valid ``rate()`` or ``cron()`` (None: it is).

    The rules are Scheduler's: ``rate(1 minute)``, ``rate(5 minutes)`` (singular only for 1); ``cron(minutes
    hours day-of-month month day-of-week year)`` with ``?`` in exactly one of the two day fields.
    """
    if expression.startswith("rate("):
        match = _RATE.match(expression)
        if match is None:
            return "expected rate(<n> minute|minutes|hour|hours|day|days)"
        singular = not match["unit"].endswith("s")
        if singular != (match["value"] == "1"):
            return "use the singular unit for 1 (rate(1 hour)) and the plural otherwise (rate(2 hours))"
        return None
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split(" ")
        if len(fields) != 6 or not all(_CRON_FIELD.match(f) for f in fields):
            return "expected cron(minutes hours day-of-month month day-of-week year), six fields"
        if (fields[2] == "?") == (fields[4] == "?"):
            return "cron() needs '?' in exactly one of day-of-month and day-of-week"
        return None
    return "expected rate(...) or cron(...)"


class DefinitionType(StrEnum):
    EXPORT = "export"  # every run exports everything the request selects
    INCREMENTAL = "export_incremental"  # VECTOR: only what changed since the last successful run


class Trigger(StrEnum):
    # Run again when what it reads changes: the catalog record's source is replaced (RASTER), or the
    # owner's features in its AoI (of its model) are created, changed or deleted (VECTOR).
    ON_SOURCE_CHANGE = "on-source-change"


def features_key(owner: str) -> str:
    return f"features#{owner}"


class RunCause(StrEnum):
    MANUAL = "manual"  # POST /export-definitions/{id}/run
    SCHEDULE = "schedule"
    SOURCE_CHANGE = "source-change"


class RunOutcome(StrEnum):
    STARTING = "starting"  # claimed; its task is being created (a retried trigger finishes it)
    STARTED = "started"  # a task was created (or, for a failed start, see the task)
    REFUSED = "refused"  # no task: the reason says why (the owner is disabled, the request no longer fits)


class DefinitionInput(BaseModel):
    """Body of ``POST /export-definitions`` and ``PUT /export-definitions/{id}``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    request: CreateExportTaskRequest = Field(description="the body of POST /export-tasks each run sends")
    schedules: list[str] = Field(
        default_factory=list,
        max_length=MAX_SCHEDULES,
        description="EventBridge Scheduler expressions, UTC: rate(1 day), cron(0 6 ? * MON-FRI *)",
    )
    transports: list[Transport] = Field(default_factory=list, max_length=MAX_TRANSPORTS)
    type: DefinitionType = DefinitionType.EXPORT
    trigger: Trigger | None = Field(
        None,
        description="on-source-change: run again when the record's source is replaced (RASTER) or when the "
        "owner's features in the AoI change (VECTOR), once per burst",
    )
    enabled: bool = Field(True, description="a disabled definition keeps its runs but does not run")

    @field_validator("schedules")
    @classmethod
    def _schedules(cls, schedules: list[str]) -> list[str]:
        for index, expression in enumerate(schedules):
            problem = schedule_problem(expression)
            if problem is not None:
                raise ValueError(f"schedules[{index}] {expression!r}: {problem}")
        return schedules

    @model_validator(mode="after")
    def _consistent(self) -> DefinitionInput:
        if self.request.transports:
            raise ValueError("a definition's transports go at its top level, not in its request")
        if self.type is DefinitionType.INCREMENTAL and self.request.domain is not Domain.VECTOR:
            raise ValueError(
                "export_incremental is for VECTOR exports (features change; rasters are replaced)"
            )
        return self

    def source_key(self, owner: str) -> str | None:
        """What an on-source-change definition follows: its catalog record, or its owner's features."""
        if self.trigger is not Trigger.ON_SOURCE_CHANGE:
            return None
        if self.request.domain is Domain.VECTOR:
            return features_key(owner)
        return str(self.request.catalogRecordID) if self.request.catalogRecordID else None


class ExportDefinition(DefinitionInput):
    """A stored definition, as answered."""

    model_config = ConfigDict(extra="ignore")
    id: UUID
    owner: str
    createdAt: datetime
    updatedAt: datetime

    def run_request(self, parameters: dict[str, Any] | None = None) -> CreateExportTaskRequest:
        """The request one run sends: the saved one, with the definition's transports."""
        update: dict[str, Any] = {"transports": list(self.transports)}
        if parameters:
            update["parameters"] = {**self.request.parameters, **parameters}
        return self.request.model_copy(update=update)


class DefinitionRun(BaseModel):
    """One run of a definition: the task it made, or why none was made."""

    definitionId: UUID
    runId: str = Field(description="the run's key: its time and cause")
    at: datetime = Field(description="when it was due (schedules: the scheduled time)")
    cause: RunCause
    outcome: RunOutcome
    taskId: UUID | None = None
    statusCode: int = Field(description="what POST /export-tasks answered (201 created; 4xx refused)")
    reason: str | None = None
    changedSince: datetime | None = Field(default=None, description="export_incremental: the window's start")
    taskStatus: str | None = Field(default=None, description="the task's status now (in lists)")


class RunList(BaseModel):
    items: list[DefinitionRun]
    nextToken: str | None = None


class DefinitionList(BaseModel):
    items: list[ExportDefinition]
    nextToken: str | None = None


class LatestArtifact(BaseModel):
    """The stable link's answer (also the body of its redirect)."""

    definitionId: UUID
    taskId: UUID
    runAt: datetime
    name: str
    size: int
    sha256: str
    url: str
