"""The CLC+ Backbone API (seed 003) as a thin mapping onto export tasks: orders are tasks.

``get_product`` (AoI as WKT), ``get_national_product`` (a country, in its national projection) and
``get_product_europe`` (the whole coverage) each create an export task of the configured raster product
as a zipped Cloud Optimized GeoTIFF in EPSG:3035 (LAEA Europe), as CLC+ delivers it; ``order_status``
answers CLC+'s states from the task's status.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from geoexport.errors import FieldProblem, InvalidRequest, NotFound, UnprocessableRequest
from geoexport.models.catalog import CatalogRecord
from geoexport.models.geojson import CountryAoi
from geoexport.models.tasks import (
    ArtifactType,
    CreateExportTaskRequest,
    Domain,
    ExportFormat,
    ExportTask,
    Packer,
    TaskStatus,
)

#: CLC+ covers the EEA38 countries and the United Kingdom: this box (EPSG:4326) is "the entire Europe" of
#: get_product_europe (the whole footprint of a world-wide record could not be drawn in LAEA Europe).
EUROPE = "POLYGON((-31.3 27.6, 44.9 27.6, 44.9 71.3, -31.3 71.3, -31.3 27.6))"


class ProductType(StrEnum):
    RASTER = "Raster"
    VECTOR = "Vector"


class ProductOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_type: ProductType
    aoi: str = Field(min_length=8, max_length=1_000_000, description="WKT in EPSG:4326")
    user_id: str = Field(min_length=1, max_length=200)


class NationalOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_type: ProductType
    country: str = Field(min_length=2, max_length=100, description="name or ISO 3166 alpha-3")
    user_id: str = Field(min_length=1, max_length=200)


class EuropeOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_type: ProductType
    user_id: str = Field(min_length=1, max_length=200)


OrderState = Literal["RECEIVED", "QUEUED", "RUNNING", "SUCCESS", "FAILED", "INVALID"]


class OrderAnswer(BaseModel):
    order_id: UUID
    status: OrderState = "RECEIVED"


class OrderStatus(BaseModel):
    order_id: UUID
    status: OrderState
    result: str | None = Field(None, description="SUCCESS: the download link of the zipped product")
    reason: str | None = Field(None, description="FAILED or INVALID: why")


class Exports(Protocol):
    def create(self, request: CreateExportTaskRequest, owner: str = ..., api: Any = ...) -> Any: ...
    def get(self, task_id: UUID, owner: str = ...) -> ExportTask: ...


class Records(Protocol):
    def list(self) -> list[CatalogRecord]: ...


STATES: dict[TaskStatus, OrderState] = {
    TaskStatus.PENDING: "QUEUED",
    TaskStatus.PAUSED: "QUEUED",
    TaskStatus.IN_PROGRESS: "RUNNING",
    TaskStatus.COMPLETED: "SUCCESS",
    TaskStatus.FAILED: "FAILED",
    TaskStatus.ABORTED: "FAILED",
    TaskStatus.EXPIRED: "FAILED",
    TaskStatus.ARCHIVED: "FAILED",
}


class ClcFacade:
    def __init__(
        self,
        exports: Exports,
        records: Records,
        raster_product: str,
        crs: str = "3035",
        vector_model: str = "",
    ) -> None:
        self._exports = exports
        self._records = records
        self._raster_product = raster_product
        self._crs = crs
        self._vector_model = vector_model

    def _record(self) -> CatalogRecord:
        for record in self._records.list():
            if record.name == self._raster_product:
                return record
        raise NotFound(f"the raster product {self._raster_product!r} is not in the catalog")

    def _order(self, product_type: ProductType, aoi: Any, user_id: str, owner: str) -> OrderAnswer:
        fields: dict[str, Any] = {
            "ROI": aoi,
            "packer": Packer.ZIP,
            "description": f"CLC+ {product_type.value} order",
            "keywords": {"user_id": user_id, "clc": True},
        }
        if product_type is ProductType.VECTOR:  # the caller's features (of the configured model), GPKG layers
            fields.update(domain=Domain.VECTOR, format=ExportFormat.GPKG)
            if self._vector_model:
                fields["parameters"] = {"model": self._vector_model}
        else:
            fields.update(domain=Domain.RASTER, format=ExportFormat.GTIFF, catalogRecordID=self._record().id)
        if not isinstance(aoi, CountryAoi):
            fields["artifactCRS"] = self._crs  # national products keep their national projection
        where = "country" if isinstance(aoi, CountryAoi) else "aoi"
        try:
            outcome = self._exports.create(CreateExportTaskRequest(**fields), owner)
        except (InvalidRequest, UnprocessableRequest) as error:
            # Name the facade's fields, not the export API's: ROI... is this request's aoi (or country).
            error.problems = [
                FieldProblem(where + p.field.removeprefix("ROI"), p.reason)
                if p.field.startswith("ROI")
                else p
                for p in error.problems
            ]
            raise
        return OrderAnswer(order_id=outcome.task.id)

    def get_product(self, order: ProductOrder, owner: str) -> OrderAnswer:
        return self._order(order.product_type, order.aoi, order.user_id, owner)

    def get_national_product(self, order: NationalOrder, owner: str) -> OrderAnswer:
        return self._order(order.product_type, CountryAoi(country=order.country), order.user_id, owner)

    def get_product_europe(self, order: EuropeOrder, owner: str) -> OrderAnswer:
        return self._order(order.product_type, EUROPE, order.user_id, owner)

    def status(self, order_id: UUID, owner: str) -> OrderStatus:
        task = self._exports.get(order_id, owner)
        state = STATES[task.status]
        if task.status is TaskStatus.FAILED and task.failureKind == "input":
            state = "INVALID"
        result = None
        if state == "SUCCESS":
            data = [a for a in task.artifacts if a.type in (ArtifactType.BUNDLE, ArtifactType.GTIFF)]
            result = data[0].url if data else None
        return OrderStatus(
            order_id=task.id,
            status=state,
            result=result,
            reason=task.errorReason if state in ("FAILED", "INVALID") else None,
        )
