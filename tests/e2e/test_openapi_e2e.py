"""The served OpenAPI document is the committed one, Swagger UI is served, and a bounded schemathesis run
over it finds no 5xx and no response that breaks the schema."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from geoexport_local.openapi import target
from tests.e2e.conftest import Service
from tests.support import ROOT


def test_openapi_and_docs_are_served(service: Service) -> None:
    status, document, _ = service.request("GET", "/openapi.json")
    assert status == 200 and document == json.loads(target(ROOT).read_text())
    with urllib.request.urlopen(service.api + "/docs") as page:
        html = page.read().decode()
    assert page.status == 200 and "swagger-ui" in html and "openapi.json" in html


def test_schemathesis_finds_no_server_error_and_no_schema_violation(service: Service, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{service.api}/openapi.json",
            "--url",
            service.api,
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "12",
            "--generation-deterministic",
            "--request-timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    summary = result.stdout[-3000:]
    print(summary)
    assert result.returncode == 0, summary
    assert " passed" in summary and "failures" not in summary.splitlines()[-1]
