"""Model use cases: register (the schema must be a usable JSON Schema), read, list, validate properties."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from geoexport.errors import FieldProblem, NotFound, UnprocessableRequest
from geoexport.features.models import FeatureModel, ModelIn
from geoexport.features.schemas import schema_problems, violations


class Models(Protocol):
    def create(self, model: FeatureModel) -> None: ...
    def get(self, name: str) -> FeatureModel: ...
    def all_models(self) -> list[FeatureModel]: ...


class ModelService:
    def __init__(self, models: Models, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._models = models
        self._clock = clock

    def register(self, body: ModelIn, owner: str) -> FeatureModel:
        problems = schema_problems(body.properties_schema)
        if problems:
            raise UnprocessableRequest("the schema is not a usable JSON Schema", problems)
        model = FeatureModel.model_validate(
            {
                "name": body.name,
                "description": body.description,
                "schema": body.properties_schema,
                "createdAt": self._clock(),
                "createdBy": owner,
            }
        )
        self._models.create(model)
        return model

    def get(self, name: str) -> FeatureModel:
        return self._models.get(name)

    def all_models(self) -> list[FeatureModel]:
        return sorted(self._models.all_models(), key=lambda m: m.name)

    def check_properties(self, model_name: str, properties: dict[str, Any]) -> list[FieldProblem]:
        """Every violation of the model's schema (an unknown model is one problem, on ``model``)."""
        try:
            model = self._models.get(model_name)
        except NotFound:  # a problem of the feature (422), not a missing route
            return [FieldProblem("model", f"no model named {model_name} is registered")]
        return violations(properties, model.properties_schema)
