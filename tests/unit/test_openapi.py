"""The committed OpenAPI document is the one the code generates, and it covers every route."""

import json

from geoexport_local.openapi import render, target
from geoexport_local.template import read_stack, serving_route
from tests.support import ROOT


def test_committed_document_matches_the_code() -> None:
    generated = render(ROOT)
    committed = target(ROOT).read_text()
    assert generated == committed, "functions/docs/openapi.json is stale: run `make openapi` and commit it"


def test_every_api_route_is_documented_with_error_shapes() -> None:
    document = json.loads(target(ROOT).read_text())
    for route in read_stack(ROOT).routes:
        if route.function in ("DocsFunction", "WebFunction"):  # pages and static files, not API
            continue
        # A {variable} part the function answers only literally (callbacks:replay) is documented literally.
        served = [p for p in document["paths"] if serving_route([route], route.method, p)]
        assert served, route.path
        operation = document["paths"][route.path if route.path in served else served[0]][route.method.lower()]
        responses = operation["responses"]
        assert any(code.startswith(("2", "3")) for code in responses), route.path  # 302: the stable link
        if route.path != "/health":
            assert responses["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


def test_every_limit_a_client_can_hit_is_stated_in_the_document() -> None:
    """Issue 12: limits (ROI features, vertices, hooks, batch size) were enforced but not documented."""
    import json

    from geoexport.models.tasks import MAX_WEBHOOKS_PER_REQUEST, MAX_WEBHOOKS_PER_TASK
    from geoexport.settings import TaskServiceSettings
    from geoexport_local.openapi import target
    from tests.support import ROOT

    document = json.loads(target(ROOT).read_text())
    text = document["info"]["description"]
    fields = TaskServiceSettings.model_fields
    for stated in (
        f"{fields['max_roi_vertices'].default:,} vertices",
        f"{fields['max_export_tiles'].default:,} tiles",
        f"{fields['max_export_bytes'].default:,} bytes",
        f"{fields['max_invocation_seconds'].default:,} s",
        f"more than {fields['fanout_tiles'].default:,} tiles",
        f"{MAX_WEBHOOKS_PER_REQUEST} per request and {MAX_WEBHOOKS_PER_TASK} per task",
        "100 features",
        "100 per batch create",
        "ClientStorageQuotaBytes",
        "ClientMaxConcurrentExports",
        "ExportMaxLifetimeDays",
    ):
        assert stated in text, stated
    schemas = document["components"]["schemas"]
    assert schemas["RoiFeatureCollection"]["properties"]["features"]["maxItems"] == 100
