"""Inputs of the step functions, as the state machine passes them (validated by powertools' parser)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from geoexport.models.tasks import ArtifactType
from geoexport.pipeline.notify import Outcome


class ClipInput(BaseModel):
    taskId: str


class PackageInput(BaseModel):
    taskId: str
    planKey: str


class StagedFile(BaseModel):
    type: ArtifactType
    name: str
    key: str
    size: int
    sha256: str


class UploadInput(BaseModel):
    taskId: str
    files: list[StagedFile]


class NotifyInput(BaseModel):
    taskId: str
    outcome: Outcome = Outcome.COMPLETED
    failedStep: str | None = None
    error: dict[str, Any] | None = None
