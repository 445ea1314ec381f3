"""GET /openapi.json and GET /docs (Swagger UI): the committed document, generated from the code."""

import json
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

SPEC = (Path(__file__).parent / "openapi.json").read_text()
TITLE = json.loads(SPEC)["info"]["title"]
SWAGGER_UI = "static/vendor/swagger-ui"  # vendored and pinned (web/package.json), served by WebFunction
PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{TITLE} API</title>
<link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{SWAGGER_UI}/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "openapi.json", dom_id: "#swagger-ui"}});</script>
</body></html>
"""

app = APIGatewayRestResolver()


@app.get("/openapi.json")
def openapi() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=SPEC)


@app.get("/docs")
def docs() -> Response[str]:
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=PAGE)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
