"""API functions never import rasterio, numpy, shapely or GDAL (cold starts stay small)."""

import json
import subprocess
import sys

import pytest

from tests.support import ROOT

API_FUNCTIONS = [
    "create_task",
    "get_task",
    "abort_task",
    "storage",
    "catalog",
    "health",
    "docs",
    "auth_token",
    "authorizer",
]
HEAVY = ["numpy", "rasterio", "osgeo", "shapely"]

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(name for name in sys.modules if name.split('.')[0] in {heavy})))
"""


@pytest.mark.parametrize("name", API_FUNCTIONS)
def test_api_function_imports_stay_light(name: str) -> None:
    env = {
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "TASKS_TABLE": "t",
        "CATALOG_TABLE": "c",
        "EXPORTS_BUCKET": "b",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE.replace("{heavy}", repr(set(HEAVY))),
            str(ROOT / "functions" / name / "app.py"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_the_probe_would_notice_a_heavy_import() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import geoexport.raster.render, sys; print('numpy' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "True"
