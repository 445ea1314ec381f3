"""Feature models: the schema must be usable, properties are checked with every violation named."""

from __future__ import annotations

import pytest

from geoexport.errors import Conflict, NotFound, UnprocessableRequest
from geoexport.features.models import FeatureModel, ModelIn
from geoexport.features.service import ModelService

CITY = {
    "type": "object",
    "required": ["name", "population"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "population": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


class Memory:
    def __init__(self) -> None:
        self.models: dict[str, FeatureModel] = {}

    def create(self, model: FeatureModel) -> None:
        if model.name in self.models:
            raise Conflict("taken")
        self.models[model.name] = model

    def get(self, name: str) -> FeatureModel:
        if name not in self.models:
            raise NotFound(name)
        return self.models[name]

    def all_models(self) -> list[FeatureModel]:
        return list(self.models.values())


def test_register_and_check_properties_with_every_violation() -> None:
    service = ModelService(Memory())
    model = service.register(ModelIn.model_validate({"name": "city", "schema": CITY}), "gx-1")
    assert model.createdBy == "gx-1" and model.model_dump()["schema"] == CITY
    assert service.check_properties("city", {"name": "Oslo", "population": 700000}) == []
    problems = service.check_properties("city", {"name": "", "population": -1, "tags": ["a", 3], "x": 1})
    assert {(p.field, p.reason.split(" ")[0]) for p in problems} == {
        ("properties", "Additional"),
        ("properties.name", "''"),
        ("properties.population", "-1"),
        ("properties.tags[1]", "3"),
    }
    assert service.check_properties("town", {})[0].field == "model"


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"type": "object", "properties": {"a": {"type": "no-such-type"}}}, "schema.properties.a.type"),
        ({"type": "string"}, "schema.type"),
        ({"type": "object", "required": "name"}, "schema.required"),
    ],
)
def test_an_unusable_schema_is_refused_with_where(schema: dict[str, object], field: str) -> None:
    with pytest.raises(UnprocessableRequest) as refused:
        ModelService(Memory()).register(ModelIn.model_validate({"name": "bad", "schema": schema}), "gx-1")
    assert refused.value.problems[0].field == field


def test_each_model_is_checked_by_its_own_kept_validator_and_a_dropped_model_takes_it_along() -> None:
    service = ModelService(Memory())
    service.CACHED = 2
    for name, minimum in (("a", 0), ("b", 10), ("c", 100)):
        schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": minimum}}}
        service.register(ModelIn.model_validate({"name": name, "schema": schema}), "gx-1")
    assert service.check_properties("a", {"n": 5}) == []
    assert [p.field for p in service.check_properties("b", {"n": 5})] == ["properties.n"]
    assert service.check_properties("b", {"n": 50}) == []  # the kept validator, still b's
    assert [p.field for p in service.check_properties("c", {"n": 50})] == ["properties.n"]  # a is dropped
    assert set(service._known) == {"b", "c"} and set(service._validators) <= {"b", "c"}
    assert service.check_properties("a", {"n": 5}) == []  # read again, checked against its own schema
