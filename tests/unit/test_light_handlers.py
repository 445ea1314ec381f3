"""API functions never import rasterio, numpy, shapely or GDAL (cold starts stay small)."""

import json
import subprocess
import sys

import pytest

from geoexport_local.template import read_stack
from tests.support import ROOT

# Every function behind API Gateway (from template.yaml, so a new route is covered without editing this),
# and the authorizer that guards them.
_STACK = read_stack(ROOT)
API_FUNCTIONS = sorted(
    {_STACK.functions[r.function].code_dir.name for r in _STACK.routes}
    | {_STACK.functions[r.authorizer].code_dir.name for r in _STACK.routes if r.authorizer}
)
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
    function = next(f for f in _STACK.functions.values() if f.code_dir.name == name)
    env = {
        **function.environment,  # the template's: settings fail the import when a name is missing
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
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
