"""The `sam build` output (issue 11): every function's unzipped code plus its layers fits Lambda's limit.

`make test` runs `make build` (sam build, no Docker) first; this reads what it built, as Lambda would count
it: the function's directory and every layer it names, unzipped."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from geoexport_local.template import load_yaml, read_stack
from tests.support import ROOT

STACK = read_stack(ROOT)

LIMIT = 262_144_000  # bytes: a function and all its layers, unzipped
BUILD = ROOT / ".aws-sam" / "build"


def unzipped_size(path: Path) -> int:
    return sum((Path(folder) / name).lstat().st_size for folder, _, names in os.walk(path) for name in names)


def built() -> dict[str, Any]:
    template = BUILD / "template.yaml"
    if not template.exists():
        pytest.fail("no sam build output: run `make build` (make test does) first")
    return load_yaml(template)


def layers_of(function: dict[str, Any], globals_: dict[str, Any]) -> list[str]:
    names = [*globals_.get("Layers", []), *function["Properties"].get("Layers", [])]
    return [layer["Ref"] for layer in names]


def test_every_function_with_its_layers_is_under_the_limit() -> None:
    template = built()
    resources = template["Resources"]
    globals_ = template.get("Globals", {}).get("Function", {})
    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    assert len(functions) >= 20
    totals: dict[str, int] = {}
    for name, function in sorted(functions.items()):
        total = unzipped_size(BUILD / function["Properties"]["CodeUri"])
        for layer in layers_of(function, globals_):
            total += unzipped_size(BUILD / resources[layer]["Properties"]["ContentUri"])
        totals[name] = total
        print(f"{name:28s} {total / 1e6:8.1f} MB ({', '.join(layers_of(function, globals_))})")
    assert max(totals.values()) < LIMIT, {k: v for k, v in totals.items() if v >= LIMIT}
    # The light API functions carry no native geospatial library at all.
    for name in ("CreateTaskFunction", "GetTaskFunction", "FeaturesFunction", "TokenFunction"):
        assert set(layers_of(functions[name], globals_)) == {"CoreLayer"}, name


def test_each_layer_holds_only_the_gdal_its_functions_import() -> None:
    resources = built()["Resources"]
    raster = BUILD / resources["RasterLayer"]["Properties"]["ContentUri"] / "python"
    vector = BUILD / resources["VectorLayer"]["Properties"]["ContentUri"] / "python"
    assert (raster / "rasterio").is_dir() and not (raster / "pyogrio").exists()
    assert (vector / "pyogrio").is_dir() and not (vector / "rasterio").exists()
    assert (vector / "pyproj").is_dir()


RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")


@pytest.fixture(scope="module")
def lambda_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the python3.11 Lambda runtime adds to a function: boto3 and its dependencies, nothing else."""
    import boto3

    site = Path(boto3.__file__).parent.parent
    runtime = tmp_path_factory.mktemp("lambda-runtime")
    for name in RUNTIME_PACKAGES:
        (runtime / name).symlink_to(site / name)
    return runtime


def test_every_built_function_imports_with_only_its_own_layers(lambda_runtime: Path) -> None:
    """`import app` in a fresh, isolated interpreter whose path is the function, its layers' python/ and the
    runtime's boto3: a module a function needs but its layers lack fails here, not on AWS."""
    import subprocess
    import sys

    template = built()
    resources = template["Resources"]
    globals_ = template.get("Globals", {}).get("Function", {})
    failures = {}
    for name, function in sorted(resources.items()):
        if function["Type"] != "AWS::Serverless::Function":
            continue
        path = [str(BUILD / function["Properties"]["CodeUri"])]
        path += [
            str(BUILD / resources[layer]["Properties"]["ContentUri"] / "python")
            for layer in layers_of(function, globals_)
        ]
        path.append(str(lambda_runtime))
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            **STACK.functions[name].environment,  # the template's, references resolved (a cold start
            # fails without a setting the function needs)
        }
        code = (
            "import sys, time; sys.path[:0] = sys.argv[1:]; started = time.perf_counter(); import app; "
            "print(f'{(time.perf_counter() - started) * 1000:.0f}')"
        )
        result = subprocess.run(
            [sys.executable, "-I", "-S", "-B", "-c", code, *path],  # -B: leave the build as built
            capture_output=True,
            text=True,
            env=env,
            cwd=lambda_runtime,
            timeout=120,
            check=False,
        )
        if result.returncode:
            failures[name] = result.stderr.strip().splitlines()[-1:]
        else:
            print(f"{name:28s} cold import {result.stdout.strip():>6s} ms")
    assert not failures, failures


def test_the_core_layer_holds_the_domain_package_and_no_tooling() -> None:
    """The local stack and the operator CLI are development and operator tools, not Lambda code; the
    layer's boto3 and botocore come as a pair (the X-Ray SDK brings botocore)."""
    template = built()
    layer = BUILD / template["Resources"]["CoreLayer"]["Properties"]["ContentUri"] / "python"
    assert (layer / "geoexport" / "bootstrap.py").exists()
    assert not (layer / "geoexport_local").exists() and not (layer / "geoexport_cli").exists()
    assert not (layer / "geoexport" / "cli.py").exists()
    assert (layer / "boto3").is_dir() and (layer / "botocore").is_dir()
