"""The dedupe fingerprint ignores how an area is written, not what it is; containment is MapColonies'."""

from typing import Any
from uuid import UUID

from geoexport.models import CreateExportTaskRequest
from geoexport.tasks import dedupe

RECORD = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
SQUARE = [[35.0, 31.9], [35.1, 31.9], [35.1, 32.0], [35.0, 32.0], [35.0, 31.9]]


def request(
    rings: list[list[float]], res: float = 0.000171661376953125, **extra: Any
) -> CreateExportTaskRequest:
    return CreateExportTaskRequest.model_validate(
        {
            "catalogRecordID": RECORD,
            "domain": "RASTER",
            **extra,
            "ROI": {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"maxResolutionDeg": res},
                        "geometry": {"type": "Polygon", "coordinates": [rings]},
                    }
                ],
            },
        }
    )


def fp(body: CreateExportTaskRequest) -> str:
    return dedupe.fingerprint(body, "1.0|anonymous")


def test_same_area_written_differently_matches() -> None:
    base = fp(request(SQUARE))
    rotated = SQUARE[2:-1] + SQUARE[:3]
    assert fp(request(rotated)) == base
    assert fp(request(list(reversed(SQUARE)))) == base
    jitter = [[x + 1e-6, y - 1e-6] for x, y in SQUARE]  # far below a pixel at zoom 12
    assert fp(request(jitter)) == base
    assert fp(request(SQUARE, description="another description", webhooks=[])) == base


def test_what_changes_the_output_changes_the_fingerprint() -> None:
    base = fp(request(SQUARE))
    assert fp(request(SQUARE, res=0.000343322753906250)) != base  # zoom 11 instead of 12 (MapColonies #115)
    moved = [[x + 0.01, y] for x, y in SQUARE]
    assert fp(request(moved)) != base
    assert dedupe.fingerprint(request(SQUARE), "2.0|anonymous") != base  # another record version
    assert dedupe.fingerprint(request(SQUARE), "1.0|someone-else") != base
    other = request(SQUARE).model_copy(update={"catalogRecordID": UUID(int=1)})
    assert fp(other) != base


def test_scope_ignores_geometry_only() -> None:
    moved = [[x + 0.01, y] for x, y in SQUARE]
    assert dedupe.scope(request(SQUARE), "v") == dedupe.scope(request(moved), "v")
    assert dedupe.scope(request(SQUARE), "v") != dedupe.scope(request(SQUARE, res=0.0003433227539), "v")


def shrink(rings: list[list[float]], factor: float) -> list[list[float]]:
    cx = sum(p[0] for p in rings[:-1]) / 4
    cy = sum(p[1] for p in rings[:-1]) / 4
    return [[cx + (x - cx) * factor, cy + (y - cy) * factor] for x, y in rings]


def features(rings: list[list[float]], res: float = 0.000171661376953125) -> list[Any]:
    roi = request(rings, res).ROI
    assert roi is not None
    return list(roi.features)


def test_containment_rule() -> None:
    old = features(SQUARE)
    assert dedupe.contained(features(shrink(SQUARE, 0.95)), old)  # inside, 90 % of the area
    assert not dedupe.contained(features(shrink(SQUARE, 0.8)), old)  # inside but only 64 %
    nudged = [[x + 0.00003, y] for x, y in SQUARE]  # ~3 m east: within the 5 m buffer
    assert dedupe.contained(features(nudged), old)
    pushed = [[x + 0.0002, y] for x, y in SQUARE]  # ~19 m east: outside it
    assert not dedupe.contained(features(pushed), old)
    assert not dedupe.contained(features(shrink(SQUARE, 0.95), res=0.0003433227539), old)  # other zoom
