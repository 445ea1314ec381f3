"""Build the OpenAPI document from the code: every API function's powertools resolver, merged.

The functions behind API Gateway come from template.yaml; each is imported (settings from a dummy
environment, no AWS call happens at import) and asked for its schema. ``python -m geoexport_local.openapi``
rewrites the committed ``functions/docs/openapi.json``; a test fails when it drifts from the code.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from geoexport import __version__
from geoexport_local.functions import function_environment
from geoexport_local.template import read_stack, serving_route

DOCS_FUNCTION = "DocsFunction"
WEB_FUNCTION = "WebFunction"  # static files, not API


def limits() -> str:
    """Every limit a client can hit, from the constants and setting defaults the code enforces."""
    from geoexport.api.http import MAX_JSON_DEPTH
    from geoexport.features.schemas import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH
    from geoexport.models.tasks import MAX_WEBHOOKS_PER_REQUEST, MAX_WEBHOOKS_PER_TASK
    from geoexport.settings import TaskServiceSettings, TokenSettings

    task = TaskServiceSettings.model_fields
    token = TokenSettings.model_fields

    def default(fields: dict[str, Any], name: str) -> str:
        return f"{fields[name].default:,}"

    return "\n".join(
        [
            "Limits (defaults; a deployment may change the settings in parentheses):",
            "- request bodies: 10 MB (413); JSON nested at most "
            f"{MAX_JSON_DEPTH:,} levels (400); bodies must be JSON (415)",
            f"- ROI: at most 100 features; at most {default(task, 'max_roi_vertices')} vertices in all "
            "(MAX_ROI_VERTICES; 413); a ring may not cross the antimeridian (422)",
            f"- one export: at most {default(task, 'max_export_tiles')} tiles (MAX_EXPORT_TILES) "
            "and "
            f"{default(task, 'max_export_bytes')} bytes (MAX_EXPORT_BYTES: the Package step's scratch; a "
            "zipped export or a GeoTIFF counts twice) estimated; a GeoTIFF renders in one invocation, "
            f"its render estimated at most {default(task, 'max_invocation_seconds')} s "
            "(MAX_INVOCATION_SECONDS); a "
            f"GeoPackage of more than {default(task, 'fanout_tiles')} tiles (FanOutTiles) is rendered in "
            f"work items of about {default(task, 'fanout_item_tiles')} tiles (FanOutItemTiles), "
            f"{default(task, 'fanout_concurrency')} at a time (FanOutConcurrency) (422)",
            f"- webhooks: at most {MAX_WEBHOOKS_PER_REQUEST} per request and "
            f"{MAX_WEBHOOKS_PER_TASK} per task, "
            "identical requests' merged in (422)",
            f"- per client: {default(task, 'client_storage_quota_bytes')} bytes of exports held "
            "(ClientStorageQuotaBytes; 507, quota clientStorageQuota) and "
            f"{default(task, 'client_max_concurrent_exports')} exports running "
            "(ClientMaxConcurrentExports; "
            "429 with Retry-After); a usage plan's rate (429)",
            f"- cache hits keep an export at most {default(task, 'max_lifetime_days')} days after it "
            "finished "
            "(ExportMaxLifetimeDays)",
            f"- tokens: {default(token, 'client_lock_threshold')} wrong secrets per client id or "
            f"{default(token, 'source_lock_threshold')} failures per address in 15 minutes lock it out "
            "(429 with Retry-After)",
            "- features: at most 100 per batch create, 50 files each; model schemas at most "
            f"{MAX_SCHEMA_BYTES:,} bytes and {MAX_SCHEMA_DEPTH} subschemas deep, references inside only, "
            "RE2 patterns (422)",
        ]
    )


DESCRIPTION = (
    "Clip a map product to a region of interest, package it (GeoPackage in the WorldCRS84Quad grid plus "
    "metadata JSON) and download it from presigned links; a webhook says when it is ready. "
    "Errors always answer {message, errors: [{field, reason}]}.\n\n"
)


def build(root: Path) -> dict[str, Any]:
    stack = read_stack(root)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "geoexport", "version": __version__, "description": DESCRIPTION + limits()},
        "paths": {},
        "components": {"schemas": {}},
    }
    seen: set[str] = set()
    for route in stack.routes:
        function = stack.functions[route.function]
        if function.logical_id in seen or function.logical_id in (DOCS_FUNCTION, WEB_FUNCTION):
            continue
        seen.add(function.logical_id)
        path = function.code_dir / "app.py"
        spec = importlib.util.spec_from_file_location(f"openapi_{function.logical_id}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        with function_environment(
            {
                **function.environment,
                "AWS_ACCESS_KEY_ID": "x",
                "AWS_SECRET_ACCESS_KEY": "x",
                "AWS_REGION": "us-east-1",
            }
        ):
            spec.loader.exec_module(module)
        schema = module.app.get_openapi_schema(title="geoexport", version=__version__).model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        for name, item in schema.get("paths", {}).items():
            document["paths"].setdefault(name, {}).update(item)
        document["components"]["schemas"].update(schema.get("components", {}).get("schemas", {}))
    # Routes behind the template's authorizer take a bearer token (POST /auth/token issues one).
    for name, item in document["paths"].items():
        for method, operation in item.items():
            serving = serving_route(stack.routes, method, name)
            if serving is not None and serving.authorizer:
                operation["security"] = [{"bearerAuth": []}]
            # powertools documents a body for every response (from the handler's return type); a 204 has none.
            if "204" in operation.get("responses", {}):
                operation["responses"]["204"].pop("content", None)
    document["components"]["securitySchemes"] = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    document["paths"] = dict(sorted(document["paths"].items()))
    document["components"]["schemas"] = dict(sorted(document["components"]["schemas"].items()))
    return document


def render(root: Path) -> str:
    return json.dumps(build(root), indent=2, sort_keys=False) + "\n"


def target(root: Path) -> Path:
    return root / "functions" / "docs" / "openapi.json"


if __name__ == "__main__":
    project = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    target(project).write_text(render(project))
    print(f"wrote {target(project)}")
