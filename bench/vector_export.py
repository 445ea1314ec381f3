"""VECTOR export bench (issue 16): N generated point features (FEATURES, default 1,000,000) exported to a
GeoPackage + CSV in EPSG:3857, against ogr2ogr doing the same conversion from a GeoJSONSeq dump of the same
features.

- Ours: the Clip step (paging the features through the ``FeatureSource`` port, clipping each to the ROI,
  writing chunks to scratch on a moto server's S3) and the Package step (reading the chunks, reprojecting,
  appending to the GeoPackage and the CSV, metadata, STAC, checksums, staging in S3), each a whole
  process (imports included) as the functions run them, with its peak RSS (VmHWM).
- The peer: ``ogr2ogr -f GPKG -t_srs EPSG:3857`` and ``ogr2ogr -f CSV -lco GEOMETRY=AS_WKT -t_srs
  EPSG:3857`` from the dump (GDAL's own reader and writers, one thread each, as ours).
- Package and the peer run alternately, ROUNDS times (default 3), medians compared; both outputs are
  checked to hold every feature (GDAL reads ours back).

The features are not loaded into the emulator's DynamoDB: a million features would take the local stack
hours to load and gigabytes of memory (see the README); the repository's own reads are benched by
bench/features.py. The generator is the one the memory test uses (tests/integration/test_vector_memory.py).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers"), str(ROOT / "infra" / "local")]

COUNT = int(os.environ.get("FEATURES", "1000000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
STORED = int(
    os.environ.get("STORED", "0")
)  # > 0: also load that many through the repository, and select them


def settings_env(settings: Any) -> dict[str, str]:
    dumped = settings.model_dump(by_alias=True).items()
    return {**os.environ, **{k: str(v) for k, v in dumped if v is not None}}


def child(step: str, task_id: str, count: int) -> None:
    """One step in this process (as its function runs it); prints the peak RSS."""
    from datetime import UTC, datetime

    from geoexport import bootstrap
    from geoexport.pipeline import clip, package
    from geoexport.pipeline.vector import SelectLimits
    from geoexport.settings import Settings
    from tests.integration.test_render_memory import peak_rss
    from tests.integration.test_vector_memory import GeneratedFeatures

    settings = Settings.from_environ(os.environ)
    tasks, store = bootstrap.task_repository(settings), bootstrap.exports_store(settings)
    if step in ("clip", "clip-stored"):
        catalog = bootstrap.catalog_repository(settings)
        source = GeneratedFeatures(count) if step == "clip" else bootstrap.feature_service(settings)
        answer: dict[str, Any] = {"more": True}
        while answer["more"]:  # the state machine's loop (a call ends after 200 s)
            answer = clip.run(task_id, tasks, catalog, store, {}, source, None, SelectLimits())
    else:
        store.delete_prefix(f"scratch/{task_id}/packaged.json")  # a fresh run, not the staged one
        package.run(
            task_id, f"scratch/{task_id}/plan.json", tasks, store, 2, {}, lambda: datetime.now(UTC), 1
        )
    print(json.dumps({"peak": peak_rss()}))


def load(settings: Any, owner: str, count: int) -> float:
    """``count`` of the generated features stored through the repository's batch path (POST /features'
    FeatureService.create_batch, 100 per call, two callers as bench/features.py does); features/s."""
    from concurrent.futures import ThreadPoolExecutor

    from geoexport import bootstrap
    from geoexport.features.feature import FeatureCollectionIn
    from geoexport.features.models import ModelIn
    from tests.integration.test_vector_memory import GeneratedFeatures

    bootstrap.model_service(settings).register(
        ModelIn.model_validate({"name": "points", "schema": {"type": "object"}}), owner
    )
    service, source = bootstrap.feature_service(settings), GeneratedFeatures(count)

    def batch(start: int) -> None:
        body = []
        for i in range(start, min(count, start + 100)):
            f = source.feature(i)
            body.append({"id": f.id, "type": "Feature", "model": f.model, "entityType": "DATA",
                         "geometry": f.geometry, "properties": f.properties})  # fmt: skip
        results = service.create_batch(
            FeatureCollectionIn.model_validate({"type": "FeatureCollection", "features": body}), owner
        )
        assert {r.status for r in results} == {201}, results

    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(batch, range(0, count, 100)))
    return count / (time.perf_counter() - started)


def stored(settings: Any, cloud: Any, env: dict[str, str]) -> None:
    """STORED features loaded into the emulator's tables, then selected by Clip through the feature index
    (the world: the owner's entries, pages of 5,000), as the deployed Clip reads them."""
    import uuid

    from tests.integration.test_vector_memory import new_task

    owner = f"stored-{uuid.uuid4().hex[:6]}"
    rate = load(settings, owner, STORED)
    task_id = new_task(cloud, owner, ["GPKG", "CSV"])
    code = f"from bench.vector_export import child; child('clip-stored', {task_id!r}, {STORED})"
    seconds, out = whole([sys.executable, "-c", code], env)
    peak = json.loads(out.strip().splitlines()[-1])["peak"]
    print(f"Stored: {STORED:,} features loaded at {rate:,.0f}/s; Clip selected them from the index in "
          f"{seconds:.1f} s ({STORED / seconds:,.0f}/s), peak RSS {peak / 2**20:.0f} MiB")  # fmt: skip


def whole(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    return time.perf_counter() - started, done.stdout


def dump(path: Path, count: int) -> None:
    """The same features as GeoJSONSeq, flattened as our records are (identity, then properties)."""
    from tests.integration.test_vector_memory import GeneratedFeatures

    source = GeneratedFeatures(count)
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            f = source.feature(i)
            props = {"urn": f.urn, "featureId": f.id, "model": f.model, "entityType": f.entityType.value,
                     "version": f.version, **f.properties}  # fmt: skip
            out.write(json.dumps({"type": "Feature", "geometry": f.geometry, "properties": props}) + "\n")


def peer(source: Path, out: Path) -> tuple[float, int]:
    """ogr2ogr to GeoPackage, then to CSV: time of both, the larger peak RSS."""
    total, peak = 0.0, 0
    for target, options in (
        (out / "peer.gpkg", ["-f", "GPKG", "-nln", "points"]),
        (out / "peer.csv", ["-f", "CSV", "-lco", "GEOMETRY=AS_WKT"]),
    ):
        target.unlink(missing_ok=True)
        started = time.perf_counter()
        done = subprocess.run(
            [
                "/usr/bin/time",
                "-f",
                "PEAK %M",
                "ogr2ogr",
                *options,
                "-t_srs",
                "EPSG:3857",
                str(target),
                str(source),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        total += time.perf_counter() - started
        peak = max(peak, int(done.stderr.strip().splitlines()[-1].split()[1]) * 1024)
    return total, peak


def count_of(path: Path) -> int:
    info = subprocess.run(["ogrinfo", "-so", "-al", str(path)], check=True, capture_output=True, text=True)
    return int(
        next(line for line in info.stdout.splitlines() if line.startswith("Feature Count")).split()[-1]
    )


def table(
    clip_seconds: float,
    clip_peak: int,
    ours_times: list[float],
    ours_peaks: list[int],
    peer_times: list[float],
    peer_peaks: list[int],
) -> None:
    ours, theirs = statistics.median(ours_times), statistics.median(peer_times)
    mib = 2**20
    print()
    print(f"| {COUNT:,} points, GPKG + CSV in EPSG:3857 | ours | ogr2ogr (GPKG, then CSV) | ratio | goal |")
    print("|---|---|---|---|---|")
    print(f"| time, median of {ROUNDS} | Package {ours:.1f} s ({COUNT / ours:,.0f} features/s) "
          f"| {theirs:.1f} s | **{ours / theirs:.2f}** | <= 2 |")  # fmt: skip
    print(f"| peak RSS | Package {max(ours_peaks) / mib:.0f} MiB, Clip {clip_peak / mib:.0f} MiB "
          f"| {max(peer_peaks) / mib:.0f} MiB | | < 500 MB |")  # fmt: skip
    rate = COUNT / clip_seconds
    print(f"| Clip (pages -> clipped chunks in S3) | {clip_seconds:.1f} s ({rate:,.0f}/s) | | | |")


def main() -> None:  # noqa: PLR0915 (one linear script: start, measure, check, print)
    import uuid

    from geoexport import aws, bootstrap
    from geoexport.settings import Settings
    from geoexport_local.emulator import start_provisioned
    from geoexport_local.template import read_stack
    from tests.integration.conftest import Cloud
    from tests.integration.test_vector_memory import new_task
    from tests.support import free_port

    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})  # fmt: skip
    aws.reset()
    stack = read_stack(ROOT)
    server, environment = start_provisioned(stack, free_port())
    try:
        settings = Settings.from_environ(environment)
        endpoint = environment["AWS_ENDPOINT_URL"]
        env = settings_env(settings)
        cloud = Cloud(endpoint, stack, settings, {})
        if STORED:
            stored(settings, cloud, env)
        task_id = new_task(cloud, f"bench-{uuid.uuid4().hex[:6]}", ["GPKG", "CSV"])
        me = [sys.executable, "-c"]
        code = f"from bench.vector_export import child; child({{step!r}}, {task_id!r}, {COUNT})"
        clip_seconds, out = whole([*me, code.format(step="clip")], env)
        clip_peak = json.loads(out.strip().splitlines()[-1])["peak"]
        print(f"Clip: {COUNT:,} features in {clip_seconds:.1f} s ({COUNT / clip_seconds:,.0f}/s), "
              f"peak RSS {clip_peak / 2**20:.0f} MiB", flush=True)  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="vector-bench-") as tmp:
            work = Path(tmp)
            source = work / "dump.geojsonl"
            dump(source, COUNT)
            ours_times, ours_peaks, peer_times, peer_peaks = [], [], [], []
            for round_ in range(ROUNDS):
                seconds, out = whole([*me, code.format(step="package")], env)
                ours_times.append(seconds)
                ours_peaks.append(json.loads(out.strip().splitlines()[-1])["peak"])
                seconds, peak = peer(source, work)
                peer_times.append(seconds)
                peer_peaks.append(peak)
                print(
                    f"round {round_ + 1}: Package {ours_times[-1]:.1f} s, ogr2ogr {peer_times[-1]:.1f} s",
                    flush=True,
                )
            store = bootstrap.exports_store(settings)
            staged = store.get_json(f"scratch/{task_id}/packaged.json")["files"]
            found = {"GPKG": 0, "CSV": 0}  # the GeoPackage may come in parts (VectorPartSizeBytes)
            for entry in staged:
                if entry["type"] in found:
                    target = work / entry["name"]
                    store.download(entry["key"], target)
                    kind = entry["type"]
                    found[kind] += count_of(target) if kind == "GPKG" else sum(1 for _ in target.open()) - 1
            assert found == {"GPKG": COUNT, "CSV": COUNT}, found
            assert count_of(work / "peer.gpkg") == COUNT
            table(clip_seconds, clip_peak, ours_times, ours_peaks, peer_times, peer_peaks)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
