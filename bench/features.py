"""Feature index benchmark (issue 14), on the local stack exactly as `make run` starts it, over HTTP:

1. Load N generated features of mixed kinds (points, lines, polygons of varied sizes; a third clustered in
   Europe) through the API's batch path (POST /features, 100 per request, 4 clients at once as a bulk
   loader sends them; LOADERS=2 for the earlier runs' setting): features per second.
2. Query: 1 degree boxes (median of 20), the first 1,000-feature page of a continent (median of 5), and
   every page of a world listing (limit 1,000: median and slowest page), each answer checked for exactness.
3. The limit: the same queries on an in-memory shapely STRtree over the same geometries (in this process),
   printed as ratios (ours / STRtree).

Goals at 100,000 features: 1 degree box < 300 ms, continent page < 2 s, every world page < 2 s, loading at
>= 1,000 features/s. `FEATURES=10000 .venv/bin/python bench/features.py` for a quick run.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from tests.e2e.conftest import Service, start_stack, stop_stack  # noqa: E402

N = int(os.environ.get("FEATURES", "100000"))
BATCH, LOADERS = 100, int(os.environ.get("LOADERS", "4"))
EUROPE = (-10.0, 35.0, 30.0, 70.0)


def generate(n: int, seed: int = 14) -> list[dict[str, Any]]:
    """Points (70%), lines (15%) and polygons (15%), metres to a few degrees across; a third in Europe."""
    rng = random.Random(seed)
    features = []
    for index in range(n):
        if index % 3 == 0:
            x, y = rng.uniform(EUROPE[0], EUROPE[2]), rng.uniform(EUROPE[1], EUROPE[3])
        else:
            x, y = rng.uniform(-179.0, 175.0), rng.uniform(-85.0, 80.0)
        kind = rng.random()
        size = rng.choice([0.001, 0.01, 0.1, 1.0, 4.0]) * rng.random()
        if kind < 0.7:
            geometry: dict[str, Any] = {"type": "Point", "coordinates": [round(x, 6), round(y, 6)]}
            entity = "DATA"
        elif kind < 0.85:
            points = [[x + i * size / 4, y + rng.uniform(-size, size) / 4] for i in range(5)]
            geometry = {"type": "LineString", "coordinates": [[round(a, 6), round(b, 6)] for a, b in points]}
            entity = "DATA"
        else:
            x1, y1 = x + size, y + size * rng.uniform(0.3, 1.0)
            ring = [[x, y], [x1, y], [x1, y1], [x, y1], [x, y]]
            geometry = {"type": "Polygon", "coordinates": [[[round(a, 6), round(b, 6)] for a, b in ring]]}
            entity = "DATASET"
        features.append(
            {"id": f"f{index}", "type": "Feature", "model": "bench", "entityType": entity,
             "geometry": geometry, "properties": {"n": index}}
        )  # fmt: skip
    return features


def load(service: Service, features: list[dict[str, Any]]) -> float:
    batches = [features[i : i + BATCH] for i in range(0, len(features), BATCH)]

    def send(batch: list[dict[str, Any]]) -> None:
        status, answer, _ = service.request(
            "POST", "/features", {"type": "FeatureCollection", "features": batch}
        )
        if status != 207 or {i["status"] for i in answer["items"]} != {201}:
            raise SystemExit(f"loading failed: {status} {str(answer)[:300]}")

    started = time.monotonic()
    with ThreadPoolExecutor(LOADERS) as pool:
        for done, _ in enumerate(pool.map(send, batches), 1):
            if done % 100 == 0:
                rate = done * BATCH / (time.monotonic() - started)
                print(f"  loaded {done * BATCH:>7} features ({rate:.0f}/s)", flush=True)
    return time.monotonic() - started


def pages(
    service: Service, box: tuple[float, ...], limit: int, first_only: bool = False
) -> tuple[list[str], list[float]]:
    found, times, token = [], [], None
    query = "bbox=" + urllib.parse.quote(",".join(str(v) for v in box)) + f"&limit={limit}"
    while True:
        started = time.monotonic()
        status, page, _ = service.request(
            "GET", f"/features?{query}" + (f"&nextToken={token}" if token else "")
        )
        times.append(time.monotonic() - started)
        if status != 200:
            raise SystemExit(f"query failed: {status} {page}")
        found += [item["id"] for item in page["items"]]
        token = page.get("nextToken")
        if not token or first_only:
            return found, times


def main() -> None:
    import shapely
    from shapely.geometry import shape

    features = generate(N)
    process, service = start_stack({"GEOEXPORT_PARAMETERS": "TokenSourceLockThreshold=100000"})
    try:
        status, answer, _ = service.request(
            "POST", "/models", {"name": "bench", "schema": {"type": "object"}}
        )
        assert status in (201, 409), answer
        print(f"loading {N} features through POST /features ({BATCH} per request, {LOADERS} clients)")
        seconds = load(service, features)
        rate = N / seconds

        geometries = [shape(f["geometry"]) for f in features]
        ids = [f["id"] for f in features]
        tree = shapely.STRtree(geometries)

        def limit_answer(box: tuple[float, ...]) -> tuple[set[str], float]:
            started = time.perf_counter()
            hits = tree.query(shapely.box(*box), predicate="intersects")
            return {ids[i] for i in hits}, time.perf_counter() - started

        rng = random.Random(3)
        small, small_limit = [], []
        for _ in range(20):
            x, y = rng.uniform(EUROPE[0], EUROPE[2] - 1), rng.uniform(EUROPE[1], EUROPE[3] - 1)
            box = (round(x, 4), round(y, 4), round(x + 1, 4), round(y + 1, 4))
            found, times = pages(service, box, 1000)
            expected, seconds_limit = limit_answer(box)
            assert set(found) == expected and len(found) == len(expected), ("1 degree box differs", box)
            small.append(sum(times))
            small_limit.append(seconds_limit)
        continent, continent_limit = [], []
        expected_europe, _ = limit_answer(EUROPE)
        for _ in range(5):
            found, times = pages(service, EUROPE, 1000, first_only=True)
            assert len(found) == min(1000, len(expected_europe)) and set(found) <= expected_europe
            continent.append(times[0])
            started = time.perf_counter()
            shapely.STRtree(geometries).query(shapely.box(*EUROPE), predicate="intersects")[:1000]
            continent_limit.append(time.perf_counter() - started)
        world, world_times = pages(service, (-180.0, -90.0, 180.0, 90.0), 1000)
        assert sorted(world) == sorted(ids), "the world listing differs from every feature"
        _, world_limit = limit_answer((-180.0, -90.0, 180.0, 90.0))

        def ms(value: float) -> str:
            return f"{value * 1000:8.1f} ms"

        print(f"\nfeature index at {N} features (local stack over HTTP; limit = in-memory shapely STRtree)")
        print(f"  loading            {rate:8.0f} features/s  (goal >= 1,000/s)")
        box_ms = statistics.median(small)
        print(f"  1 degree box       {ms(box_ms)}  limit {ms(statistics.median(small_limit))}  "
              f"ratio {box_ms / statistics.median(small_limit):8.0f}x  (goal < 300 ms)")  # fmt: skip
        page_s = statistics.median(continent)
        print(f"  continent page     {ms(page_s)}  limit {ms(statistics.median(continent_limit))}  "
              f"ratio {page_s / statistics.median(continent_limit):8.0f}x  (goal < 2 s)")  # fmt: skip
        print(f"  world listing      {len(world_times)} pages, median {ms(statistics.median(world_times))}, "
              f"slowest {ms(max(world_times))}; whole {ms(sum(world_times))}, limit {ms(world_limit)} "
              f"(goal: every page < 2 s)")  # fmt: skip
        print("    pages (ms): " + " ".join(f"{t * 1000:.0f}" for t in world_times))
    finally:
        stop_stack(process)


if __name__ == "__main__":
    main()
