"""The served OpenAPI document is the committed one, Swagger UI is served, and a bounded, authenticated
schemathesis run over every route finds no 5xx and no response that breaks the schema."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from geoexport_local.openapi import target
from tests.e2e.conftest import Service
from tests.e2e.test_auth_e2e import cli
from tests.support import ROOT


def test_openapi_and_docs_are_served(service: Service) -> None:
    status, document, _ = service.request("GET", "/openapi.json")
    assert status == 200 and document == json.loads(target(ROOT).read_text())
    with urllib.request.urlopen(service.api + "/docs") as page:
        html = page.read().decode()
    assert page.status == 200 and "swagger-ui" in html and "openapi.json" in html


def test_schemathesis_finds_no_server_error_and_no_schema_violation(service: Service, tmp_path: Path) -> None:
    """Issue 12: the run sent no token, so it only ever saw 401s. Now it runs as a client of its own (small
    quotas: its random exports cannot crowd out the other tests) with a valid token on every route."""
    fuzzer = json.loads(cli(service, "client", "create", "fuzzer"))
    cli(
        service,
        "client",
        "quota",
        fuzzer["client_id"],
        "--storage-bytes",
        "200000000",
        "--max-concurrent",
        "2",
    )
    token = service.issue_token(fuzzer["client_id"], fuzzer["client_secret"])
    # 507 is a documented answer (the fuzzer's own storage quota is full), the only 5xx that may appear.
    (tmp_path / "schemathesis.toml").write_text(
        '[checks.not_a_server_error]\nexpected-statuses = ["2XX", "3XX", "4XX", "507"]\n'
    )
    # Two processes, each over a share of the routes (a resource's routes stay together for the stateful
    # phase), halve the ~5 minutes one takes on 2 cores; schemathesis's own --workers threads crash here.
    share, sides = "^/(export-definitions|create)", ("include", "exclude")
    outputs = [(tmp_path / f"{side}.out").open("w") for side in sides]  # files: a full pipe would stall a run
    runs = [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{service.api}/openapi.json",
                "--url",
                service.api,
                f"--{side}-path-regex",
                share,
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--header",
                f"Authorization: Bearer {token}",
                "--max-examples",
                "15",
                "--generation-deterministic",
                "--request-timeout",
                "30",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
        )
        for side, output in zip(sides, outputs, strict=True)
    ]
    try:
        for run in runs:
            run.wait(timeout=600)
    finally:  # a run that timed out must not go on fuzzing the stack the next tests use
        for run, output in zip(runs, outputs, strict=True):
            if run.poll() is None:
                run.kill()
                run.wait()
            output.close()
    for run, output in zip(runs, outputs, strict=True):
        printed = Path(output.name).read_text()
        summary = printed[-3000:]
        failures = printed.partition("=== FAILURES ===")[2][:6000]  # each failing case, to reproduce
        print(summary)
        assert run.returncode == 0, failures or summary
        assert " passed" in summary and "failures" not in summary.splitlines()[-1]
    tasks = service.request("GET", "/export-tasks?limit=100", token=token)[1]["items"]
    assert tasks, "the authenticated run created no export: it never got past the authorizer"
