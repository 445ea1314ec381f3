"""Issue 17, the web tool in a real browser (Debian's chromium, driven by Playwright, no GPU: SwiftShader):
sign in, see the records' footprints on the map, paste GeoJSON, draw two rectangles with the mouse at two
zooms, see the estimate, export, follow it to COMPLETED in "My exports", see its quicklook on the map,
download the GeoPackage through the page and validate it with GDAL. And the page, with the network limited
to loopback, asks nothing of the internet. Screenshots of each step go to test-artifacts/web/ (kept after a
failure too)."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Service
from tests.support import ROOT, visible_bounds

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "test-artifacts" / "web"
ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox", "--disable-dev-shm-usage"]
LOOPBACK = {"127.0.0.1", "localhost"}
# bypass_csp: these tests read canvas pixels and map coordinates by script (the offline test keeps the CSP).
DESKTOP: dict[str, Any] = {
    "viewport": {"width": 1280, "height": 800},
    "accept_downloads": True,
    "bypass_csp": True,
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def footprint_pixels(page: Any) -> int:
    """Pixels of the map canvas in the selected footprint's outline colour (#e4572e), read from the WebGL
    canvas (the map is created with preserveDrawingBuffer)."""
    count: int = page.evaluate(
        """() => {
          const source = window.geoexportMap.getCanvas();
          const copy = document.createElement('canvas');
          copy.width = source.width; copy.height = source.height;
          const context = copy.getContext('2d');
          context.drawImage(source, 0, 0);
          const data = context.getImageData(0, 0, copy.width, copy.height).data;
          let blue = 0;
          for (let i = 0; i < data.length; i += 4) {
            if (data[i] > 200 && data[i + 1] < 130 && data[i + 2] < 90) blue++;
          }
          return blue;
        }"""
    )
    return count


def sign_in(page: Any, service: Service) -> None:
    page.goto(service.api + "/")
    page.wait_for_selector("body[data-map-ready='true']", timeout=60_000)  # no eval: the page's CSP holds
    page.get_by_label("Client id").fill(service.client_id)
    page.get_by_label("Secret").fill(service.client_secret)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#records button[data-record='landsat-bahamas-rgb']", timeout=30_000)


def draw_rectangle(page: Any, west_south: tuple[float, float], east_north: tuple[float, float]) -> None:
    """Two clicks on the map canvas with the mouse, at the screen points of two corners."""
    page.get_by_role("button", name="Draw rectangle").click()
    box = page.locator("#map").bounding_box()
    corners = [
        page.evaluate(f"() => window.geoexportMap.project({list(c)})") for c in (west_south, east_north)
    ]
    (x0, y0), (x1, y1) = ((box["x"] + p["x"], box["y"] + p["y"]) for p in corners)
    page.mouse.click(x0, y0)
    page.mouse.move(x1, y1, steps=8)
    page.mouse.click(x1, y1)


def roi_text(page: Any) -> Any:
    return json.loads(page.locator("#roi-text").input_value())


# The map canvas inside the screen rectangle of lon/lat bounds, as RGBA bytes, once the map is idle.
CANVAS_IN = """async ([w, s, e, n]) => {
  const map = window.geoexportMap;
  await new Promise((done) => { map.once('idle', done); map.triggerRepaint(); });
  const a = map.project([w, n]), b = map.project([e, s]), ratio = window.devicePixelRatio;
  const x = Math.round(a.x * ratio), y = Math.round(a.y * ratio);
  const width = Math.round((b.x - a.x) * ratio), height = Math.round((b.y - a.y) * ratio);
  const copy = document.createElement('canvas');
  copy.width = width; copy.height = height;
  copy.getContext('2d').drawImage(map.getCanvas(), x, y, width, height, 0, 0, width, height);
  return Array.from(copy.getContext('2d').getImageData(0, 0, width, height).data);
}"""


def test_order_an_export_on_the_map_and_download_it(browser: Any, service: Service, tmp_path: Path) -> None:
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    try:
        sign_in(page, service)
        shot(page, "01-signed-in")
        assert footprint_pixels(page) == 0  # nothing selected yet
        page.locator("#records button[data-record='landsat-bahamas-rgb']").click()
        page.wait_for_timeout(1500)  # the map re-renders at the footprint
        assert footprint_pixels(page) > 1000, "the selected record's footprint is drawn"
        shot(page, "02-footprint")

        # Paste GeoJSON: the estimate follows it, with the deployment's limits.
        square = {
            "type": "Polygon",
            "coordinates": [[[-77.9, 24.3], [-77.75, 24.3], [-77.75, 24.45], [-77.9, 24.45], [-77.9, 24.3]]],
        }
        page.locator("#roi-text").fill(json.dumps(square))
        page.wait_for_function("document.getElementById('estimate').textContent.includes('tiles')")
        pasted_estimate = page.locator("#estimate").text_content()
        assert "Limits per export: 2,000,000 tiles" in (pasted_estimate or ""), pasted_estimate
        shot(page, "03-pasted-roi-and-estimate")

        # Draw two rectangles with the mouse instead, the second at a finer zoom than the first.
        page.get_by_label("Zoom level").fill("7")
        draw_rectangle(page, (-77.95, 24.25), (-77.6, 24.6))
        page.wait_for_function("document.querySelectorAll('#regions li').length === 1")
        first = roi_text(page)["features"][0]
        xs = [p[0] for p in first["geometry"]["coordinates"][0]]
        assert -78.0 < min(xs) < -77.9 and -77.65 < max(xs) < -77.55, first
        draw_rectangle(page, (-77.5, 24.7), (-77.3, 24.9))
        page.wait_for_function("document.querySelectorAll('#regions li').length === 2")
        page.get_by_label("Zoom of region 2").fill("8")
        page.wait_for_function("document.getElementById('roi-text').value.includes('0.00274658203125')")
        regions = roi_text(page)["features"]
        assert [f["properties"]["maxResolutionDeg"] for f in regions] == [0.703125 / 2**7, 0.703125 / 2**8]
        page.wait_for_function(
            f"document.getElementById('estimate').textContent !== {json.dumps(pasted_estimate)}"
        )
        assert "tiles" in (page.locator("#estimate").text_content() or "")
        label = f"from the web tool {uuid.uuid4().hex[:6]}"  # this test's row among the client's exports
        page.get_by_label("Description").fill(label)
        page.wait_for_timeout(600)
        shot(page, "04-two-regions")
        page.get_by_role("button", name="Export", exact=True).click()
        mine = f"#exports tr[data-status='COMPLETED']:has-text('{label}')"
        page.wait_for_selector(f"{mine} a[data-type='GPKG']", timeout=180_000)
        page.locator("#exports").scroll_into_view_if_needed()
        shot(page, "05-completed")

        # The quicklook on the map: the canvas there changes when it is shown, and back when hidden.
        page.locator(f"{mine} button[data-preview]").click()
        page.wait_for_selector(f"{mine} button[aria-pressed='true']:has-text('Hide preview')")
        page.wait_for_function("window.geoexportMap.getSource('quicklook') !== undefined")
        west, south = min(xs), min(p[1] for p in first["geometry"]["coordinates"][0])
        inside = [west + 0.02, south + 0.02, west + 0.2, south + 0.2]  # within the first region
        shown = page.evaluate(CANVAS_IN, inside)
        page.locator(f"{mine} button[data-preview]").click()
        page.wait_for_selector(f"{mine} button[aria-pressed='false']:has-text('Show on map')")
        hidden = page.evaluate(CANVAS_IN, inside)
        page.locator(f"{mine} button[data-preview]").click()  # on again, and back to the whole footprint
        page.wait_for_selector(f"{mine} button[aria-pressed='true']")
        page.locator("#records button[data-record='landsat-bahamas-rgb']").click()
        page.wait_for_timeout(1500)
        assert footprint_pixels(page) > 1000
        shot(page, "06-quicklook")  # the README picture: footprint, regions, the export and its preview
        assert len(shown) == len(hidden) > 4000
        changed = sum(
            1
            for i in range(0, len(shown), 4)
            if abs(shown[i] - hidden[i])
            + abs(shown[i + 1] - hidden[i + 1])
            + abs(shown[i + 2] - hidden[i + 2])
            > 30
        )
        assert changed > 0.5 * len(shown) / 4, (changed, len(shown) / 4)

        link = page.locator(f"{mine} a[data-type='GPKG']").first
        with page.expect_download(timeout=60_000) as download:
            link.click()
        target = tmp_path / download.value.suggested_filename
        download.value.save_as(target)
        info = subprocess.run(["gdalinfo", str(target)], capture_output=True, text=True, check=True).stdout
        assert "Driver: GPKG" in info and "ZOOM_LEVEL=8" in info
        # Zoom 8 only where the second region is; zoom 7 over both.
        seen = visible_bounds(target)
        second = regions[1]["geometry"]["coordinates"][0]
        pixel = 0.703125 / 2**8
        assert (
            seen[8][0] >= min(p[0] for p in second) - pixel
            and seen[8][1] >= min(p[1] for p in second) - pixel
        )
        assert seen[7][0] <= min(xs) + 2 * pixel and seen[7][2] >= max(p[0] for p in second) - 2 * pixel
        page.get_by_role("button", name="Sign out").click()
        assert page.evaluate("sessionStorage.getItem('geoexport.token')") is None
    except Exception:
        shot(page, "99-failure")
        raise
    finally:
        context.close()


def test_the_page_asks_nothing_of_the_internet(browser: Any, service: Service) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone-sized viewport
    outside: list[str] = []
    seen: list[str] = []

    def only_loopback(route: Any) -> None:
        address = route.request.url
        seen.append(address)
        if urlsplit(address).scheme in ("data", "blob") or urlsplit(address).hostname in LOOPBACK:
            route.continue_()
        else:
            outside.append(address)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    try:
        sign_in(page, service)
        page.goto(service.api + "/docs")
        page.wait_for_selector(".swagger-ui .info", timeout=30_000)  # Swagger UI, vendored
        shot(page, "06-docs-offline")
    finally:
        context.close()
    assert not outside, outside
    assert any("/static/vendor/maplibre-gl/" in address for address in seen)


def test_features_in_view_are_shown_and_exported(browser: Any, service: Service, tmp_path: Path) -> None:
    model = f"reef{uuid.uuid4().hex[:6]}"
    assert service.request("POST", "/models", {"name": model, "schema": {"type": "object"}})[0] == 201
    feature = {
        "type": "Feature", "id": f"{model}-1", "model": model, "entityType": "DATA",
        "geometry": {"type": "Point", "coordinates": [-77.8, 24.4]}, "properties": {"name": "a reef"},
    }  # fmt: skip
    status, created, _ = service.request("POST", "/features", feature)
    assert status == 201, created
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    try:
        sign_in(page, service)
        page.locator("#records button[data-record='landsat-bahamas-rgb']").click()  # the map goes there
        page.get_by_role("button", name="Show my features in view").click()
        page.wait_for_function("document.getElementById('features-count').textContent.includes('in view')")
        urns = page.evaluate(
            "() => window.geoexportMap.querySourceFeatures('features').map(f => f.properties.urn)"
        )
        assert created["urn"] in urns, urns
        shot(page, "07-features")
        page.get_by_label("Description").fill(f"features of {model}")
        page.get_by_role("button", name="Export features in view").click()
        row = f"#exports tr[data-status='COMPLETED']:has-text('features of {model}') a[data-type='GPKG']"
        page.wait_for_selector(row, timeout=120_000)
        with page.expect_download(timeout=60_000) as download:
            page.locator(row).first.click()
        target = tmp_path / download.value.suggested_filename
        download.value.save_as(target)
        layers = subprocess.run(
            ["ogrinfo", "-ro", "-q", str(target)], capture_output=True, text=True, check=True
        )
        assert model in layers.stdout, layers.stdout
    except Exception:
        shot(page, "99-failure-features")
        raise
    finally:
        context.close()
