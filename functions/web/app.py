"""The web tool (seeds 000/001: "an API and Web-based tool"): GET / and GET /static/{path}, public.

Static files only, from this function's own folder: the page, its script and style, the offline basemap
(Natural Earth countries) and the vendored, pinned browser libraries (MapLibre GL, terra-draw, Swagger UI;
see web/package.json and static/vendor/LICENSES.md). No CDN, no tile or font server: it works offline. The
page talks to this same API with relative URLs, so it works under any stage path.
"""

import mimetypes
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

STATIC = (Path(__file__).parent / "static").resolve()
# The offline basemap is the package's own Natural Earth countries (the AoI "country" form reads it too).
BASEMAP = "countries.geojson"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".geojson": "application/geo+json",
    ".html": "text/html; charset=utf-8",
}
SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Only this origin: the page, its assets and the API; blob: for MapLibre's workers; data: for the
    # quicklook (the API answers it inline and MapLibre fetches its image source from that URL).
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; worker-src 'self' blob:; "
    "child-src blob:; style-src 'self' 'unsafe-inline'; connect-src 'self' data: http://127.0.0.1:* https:",
}

app = APIGatewayRestResolver()


def _file(path: Path, cache: str) -> Response[str]:
    kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {"Cache-Control": cache, **SECURITY}
    return Response(status_code=200, content_type=kind, body=path.read_text(), headers=headers)


@app.get("/")
def index() -> Response[str]:
    return _file(STATIC / "index.html", "no-cache")


@app.get("/static/.+")
def static() -> Response[str]:
    path = app.current_event.path.removeprefix("/static/")
    if path == BASEMAP:
        from importlib.resources import files

        body = (files("geoexport.data") / BASEMAP).read_text()
        headers = {"Cache-Control": "public, max-age=86400", **SECURITY}
        return Response(status_code=200, content_type=TYPES[".geojson"], body=body, headers=headers)
    target = (STATIC / path).resolve()
    if not target.is_file() or STATIC not in target.parents:  # no ../ out of the folder
        return Response(status_code=404, content_type="application/json", body='{"message": "not found"}')
    return _file(target, "public, max-age=31536000, immutable" if "/vendor/" in str(target) else "no-cache")


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
