"""A catalog record's new source: ``PUT /catalog/records/{id}`` (scope ``catalog:write``).

The raster at ``key`` in the sources bucket becomes the record's source under a new ``productVersion``: it
is described by GDAL (footprint, resolution, CRS, bands), keeps the record's id, name and measured tile costs
(a new version of the same product), and ``CatalogRecordUpdated`` goes out on the exports bus. Exports
already running keep the source they started with (the clip step pinned it); dedupe keys carry the version,
so a request after the update is a new export; definitions that follow the record run again (coalesced).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from geoexport.auth.clients import CATALOG_WRITE
from geoexport.errors import Conflict, FieldProblem, SourceUnreadable, UnprocessableRequest, UnsupportedSource
from geoexport.models.catalog import CatalogRecord, SourceLocation

UPDATED = "CatalogRecordUpdated"
SOURCE = "geoexport.catalog"
SCOPE = CATALOG_WRITE


class SourceUpdate(BaseModel):
    """Body of ``PUT /catalog/records/{id}``."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(
        min_length=1,
        max_length=1024,
        description="the new raster's key in the sources bucket (a COG is best)",
    )
    productVersion: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]{1,32}$", description="default: the next whole number"
    )
    description: str | None = Field(None, max_length=2000)


class RecordUpdated(BaseModel):
    """The CatalogRecordUpdated event's detail."""

    recordId: UUID
    name: str
    productVersion: str
    previousVersion: str
    source: str
    updatedAt: datetime


class Records(Protocol):
    def get(self, record_id: UUID | str) -> CatalogRecord: ...
    def put(self, record: CatalogRecord) -> None: ...


class Publisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, object]) -> None: ...


Describe = Callable[[str, UUID, str, SourceLocation, str], CatalogRecord]


def next_version(version: str) -> str:
    """'1.0' -> '2', '7' -> '8'; a version that is not a number gets '.1' added."""
    try:
        return str(int(float(version)) + 1)
    except ValueError:
        return f"{version}.1"


class CatalogUpdates:
    def __init__(
        self,
        records: Records,
        describe: Describe,
        sources_bucket: str,
        publisher: Publisher,
        clock: Callable[[], datetime],
    ) -> None:
        self._records = records
        self._describe = describe
        self._bucket = sources_bucket
        self._publisher = publisher
        self._clock = clock

    def replace_source(self, record_id: UUID, update: SourceUpdate) -> CatalogRecord:
        current = self._records.get(record_id)
        version = update.productVersion or next_version(current.productVersion)
        if version == current.productVersion:
            raise Conflict(
                f"the record is already at productVersion {version}",
                [FieldProblem("productVersion", "give a new version (or leave it out)")],
            )
        location = SourceLocation(bucket=self._bucket, key=update.key)
        description = current.description if update.description is None else update.description
        try:
            described = self._describe(location.uri, current.id, current.name, location, description)
        except (SourceUnreadable, UnsupportedSource) as error:
            raise UnprocessableRequest(
                "the new source cannot be used", [FieldProblem("key", error.message)]
            ) from error
        record = described.model_copy(
            update={
                "productVersion": version,
                "domain": current.domain,  # a new version of a DEM is still a DEM, with its units
                "heightUnit": current.heightUnit,
                "verticalDatum": current.verticalDatum,
                "tileBytesByZoom": described.tileBytesByZoom or current.tileBytesByZoom,
                "tileSecondsByZoom": described.tileSecondsByZoom or current.tileSecondsByZoom,
            }
        )
        self._records.put(record)
        event = RecordUpdated(
            recordId=record.id,
            name=record.name,
            productVersion=version,
            previousVersion=current.productVersion,
            source=location.uri,
            updatedAt=self._clock(),
        )
        self._publisher.publish(UPDATED, event.model_dump(mode="json"))
        return record
