"""v1's deprecated GetMap-style create (seed 000): what it accepts, and the canonical request it becomes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from geoexport.models.geojson import RoiFeatureCollection
from geoexport.models.v1 import CreateGetMapRequest

RECORD = "4f65986c-0205-5599-b079-9fe14db4d1bd"


def test_a_bbox_and_a_pixel_size_become_an_roi_and_a_resolution() -> None:
    request = CreateGetMapRequest.model_validate(
        {"dbId": RECORD, "bbox": [-78.0, 24.0, -77.0, 25.0], "width": 512, "height": 512,
         "callbackURLs": ["https://example.org/hook"], "description": "v1"}
    ).to_canonical()  # fmt: skip
    assert str(request.catalogRecordID) == RECORD and request.maxResolutionDeg == pytest.approx(1 / 512)
    assert request.ROI is not None and request.ROI.model_dump(exclude_none=True) == {
        "type": "Polygon",
        "coordinates": [[[-78.0, 24.0], [-77.0, 24.0], [-77.0, 25.0], [-78.0, 25.0], [-78.0, 24.0]]],
    }
    assert [str(h.url) for h in request.webhooks] == ["https://example.org/hook"]
    explicit = CreateGetMapRequest.model_validate(
        {"dbId": RECORD, "bbox": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
         "targetResolution": 0.01}
    ).to_canonical()  # fmt: skip
    assert explicit.maxResolutionDeg == 0.01 and not isinstance(explicit.ROI, RoiFeatureCollection)
    whole = CreateGetMapRequest.model_validate({"dbId": RECORD}).to_canonical()
    assert whole.ROI is None and whole.maxResolutionDeg is None  # the record's footprint and resolution


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"bbox": [10, 0, 5, 1]}, "bbox"),  # min > max
        ({"bbox": [0, 0, 1, 100]}, "bbox"),  # off the globe
        ({"width": 100}, "width"),  # a size without a bbox
        ({"bbox": [0, 0, 1, 1], "width": 100, "targetResolution": 0.1}, "both"),
        ({"crs": "EPSG:3857"}, "crs"),
    ],
)
def test_what_it_refuses(body: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError, match=where):
        CreateGetMapRequest.model_validate({"dbId": RECORD, **body})
