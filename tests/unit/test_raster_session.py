"""rasterio's Envs share the execution environment's boto3 session (rasterio#3331: one each, otherwise)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.session import AWSSession
from rasterio.warp import reproject

from geoexport import aws
from geoexport.raster.source import gdal_env

SAMPLE = Path(__file__).resolve().parents[2] / "infra" / "sample-data" / "RGB.byte.tif"


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key-from-the-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    aws.reset()
    yield
    aws.reset()


def test_an_env_without_a_session_uses_the_shared_one(credentials: None) -> None:
    with rasterio.Env() as env:
        assert isinstance(env.session, AWSSession)
        assert env.session._session is aws.session()
        assert env.options["AWS_ACCESS_KEY_ID"] == "key-from-the-environment"


def test_reproject_builds_no_boto3_session(credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    aws.session()  # made once per execution environment, before any render
    built: list[object] = []
    original = boto3.session.Session.__init__

    def counting(self: object, *args: object, **kwargs: object) -> None:
        built.append(self)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(boto3.session.Session, "__init__", counting)
    out = np.zeros((4, 256, 256), dtype=np.uint8)
    with rasterio.open(SAMPLE) as src, gdal_env({}):
        reproject(
            source=rasterio.band(src, [1, 2, 3]),
            destination=out,
            src_nodata=0,
            dst_transform=Affine(0.002, 0, -78.5, 0, -0.002, 24.5),
            dst_crs="EPSG:4326",
            dst_alpha=4,
            num_threads=1,
        )
    assert out[3].any()  # it did warp pixels
    assert built == []  # rasterio 1.4.4 alone builds three here (one per internal Env)
