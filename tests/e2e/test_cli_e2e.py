"""Issue 17 (the CLI part): the ``geoexport`` command as a terminal user runs it, against the local stack:
create with --wait --download (files checked by sha256 and read by GDAL), list, get, log, dry run, a
failure's exit status and reason, the catalog, and a feature import in batches."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Service
from tests.support import ROOT


def run(
    service: Service, *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    # Only the local stack's state file: the CLI finds the API and the demo client there.
    env = {**os.environ, "GEOEXPORT_STATE": str(service.state), "XDG_CONFIG_HOME": "/nonexistent"}
    for name in ("GEOEXPORT_API_URL", "GEOEXPORT_CLIENT_ID", "GEOEXPORT_CLIENT_SECRET"):
        env.pop(name, None)
    return subprocess.run(
        [str(Path(sys.executable).parent / "geoexport"), *args],
        capture_output=True, text=True, env=env, check=check, timeout=timeout,
    )  # fmt: skip


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def test_create_wait_download_then_list_get_and_log(service: Service, tmp_path: Path) -> None:
    records = as_json(run(service, "catalog", "list", "--json"))
    assert {"landsat-bahamas-rgb", "jacksboro-dem"} <= {r["name"] for r in records}
    area = ["--record", "landsat-bahamas-rgb", "--bbox", "-77.62,24.02,-77.45,24.18", "--zoom", "7"]
    estimate = as_json(run(service, "export", "create", *area, "--dry-run", "--json"))
    assert estimate["tiles"] > 0 and estimate["estimatedSize"] > 0

    folder = tmp_path / "files"
    done = run(
        service, "export", "create", *area, "--description", "cli", "--wait", "--download", str(folder)
    )
    assert done.returncode == 0, done.stderr
    task_id = done.stdout.split()[0]
    assert done.stdout.split()[1:3] == ["COMPLETED", "100%"], done.stdout
    assert "sha256 ok" in done.stderr
    task = as_json(run(service, "export", "get", task_id, "--json"))
    assert task["status"] == "COMPLETED"
    for artifact in task["artifacts"]:
        data = (folder / artifact["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == artifact["sha256"]
    (gpkg,) = folder.glob("*.gpkg")
    info = subprocess.run(["gdalinfo", str(gpkg)], capture_output=True, text=True, check=True).stdout
    assert "GPKG" in info and "ZOOM_LEVEL=7" in info

    listed = as_json(run(service, "export", "list", "--json", "--limit", "50"))
    assert task_id in [t["id"] for t in listed["items"]]
    log = run(service, "export", "log", task_id).stdout
    assert "EXPORT_INSERT" in log and "STEP_FINISH" in log
    again = tmp_path / "again"
    assert run(service, "export", "download", task_id, str(again)).returncode == 0
    assert sorted(p.name for p in again.iterdir()) == sorted(p.name for p in folder.iterdir())


def test_a_failed_export_exits_non_zero_with_its_reason(service: Service) -> None:
    failed = run(service, "export", "create", "--record", "corrupt-sample", "--wait", check=False)
    assert failed.returncode == 1
    assert "ended FAILED" in failed.stderr and "cannot be read" in failed.stderr, failed.stderr
    refused = run(
        service, "export", "create", "--record", "landsat-bahamas-rgb", "--bbox", "1,2", check=False
    )
    assert refused.returncode == 1 and "--bbox is minLon,minLat,maxLon,maxLat" in refused.stderr
    far = run(
        service, "export", "create", "--record", "landsat-bahamas-rgb", "--bbox", "10,10,11,11", check=False
    )
    assert far.returncode == 1 and "422" in far.stderr and "ROI.features[0].geometry" in far.stderr, (
        far.stderr
    )


def test_features_import_in_batches(service: Service, tmp_path: Path) -> None:
    model = f"place{uuid.uuid4().hex[:6]}"
    assert service.request("POST", "/models", {"name": model, "schema": {"type": "object"}})[0] == 201
    cities = json.loads((ROOT / "tests" / "data" / "cities.geojson").read_text())
    bad = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [500, 0]}}  # off the globe
    features = [*cities["features"][:150], bad]
    path = tmp_path / "cities.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    result = run(service, "features", "import", str(path), "--model", model, "--json", check=False)
    assert result.stdout, result.stderr
    summary = json.loads(result.stdout)
    assert result.returncode == 1  # one feature was refused, and said so
    assert summary["created"] == 150 and summary["failed"] == 1, summary
    assert summary["errors"][0]["errors"], summary
