"""Feature models: a name and a JSON Schema for the ``properties`` of the features that use it (seed 004)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MODEL_NAME = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"


class ModelIn(BaseModel):
    """Body of ``POST /models``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field(pattern=MODEL_NAME, description="unique; features name it in their `model`")
    description: str = Field("", max_length=2000)
    properties_schema: dict[str, Any] = Field(
        alias="schema", description="JSON Schema (draft 2020-12) that each feature's `properties` must meet"
    )


class FeatureModel(BaseModel):
    """A registered model, as stored and answered."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
    name: str
    description: str = ""
    properties_schema: dict[str, Any] = Field(alias="schema")
    createdAt: datetime
    createdBy: str


class ModelPage(BaseModel):
    items: list[FeatureModel]
