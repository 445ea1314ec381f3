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
DESCRIPTION = (
    "Clip a map product to a region of interest, package it (GeoPackage in the WorldCRS84Quad grid plus "
    "metadata JSON) and download it from presigned links; a webhook says when it is ready. "
    "Errors always answer {message, errors: [{field, reason}]}."
)


def build(root: Path) -> dict[str, Any]:
    stack = read_stack(root)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "geoexport", "version": __version__, "description": DESCRIPTION},
        "paths": {},
        "components": {"schemas": {}},
    }
    seen: set[str] = set()
    for route in stack.routes:
        function = stack.functions[route.function]
        if function.logical_id in seen or function.logical_id == DOCS_FUNCTION:
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
