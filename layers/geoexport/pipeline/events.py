"""Inputs of the step functions, as the state machine passes them (validated by powertools' parser)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from geoexport.models.tasks import ArtifactType
from geoexport.pipeline.items import WorkItem
from geoexport.pipeline.notify import Outcome


class ClipInput(BaseModel):
    taskId: str


class PackageInput(BaseModel):
    """The single path: the whole export in one invocation."""

    taskId: str
    planKey: str


class RenderPartInput(PackageInput):
    """One work item of a fanned-out export (the Distributed Map's ItemSelector)."""

    item: WorkItem
    items: int = Field(ge=1)  # how many the export has (progress counts finished ones)


class MergeInput(PackageInput):
    """The parts of a fanned-out export, assembled."""

    merge: Literal[True]


#: What the Package function is asked to do, tried in this order.
PackageEvent = Annotated[RenderPartInput | MergeInput | PackageInput, Field(union_mode="left_to_right")]


class StagedFile(BaseModel):
    type: ArtifactType
    name: str
    key: str
    size: int
    sha256: str
    bounds: list[float] | None = None  # QUICKLOOK: [west, south, east, north] in degrees


class UploadInput(BaseModel):
    taskId: str
    files: list[StagedFile]


class NotifyInput(BaseModel):
    taskId: str
    outcome: Outcome = Outcome.COMPLETED
    failedStep: str | None = None
    error: dict[str, Any] | None = None
