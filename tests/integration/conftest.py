"""A moto server over HTTP, provisioned from template.yaml, with the sample catalog seeded into it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from geoexport import bootstrap
from geoexport.models import CatalogRecord
from geoexport.settings import Settings
from geoexport_local.emulator import client, provision, start_moto, wait_until_up
from geoexport_local.seed import seed_catalog
from geoexport_local.template import Stack, read_stack
from tests.support import ROOT, SAMPLES, free_port


@dataclass
class Cloud:
    endpoint: str
    stack: Stack
    settings: Settings
    records: dict[str, CatalogRecord]

    def client(self, service: str) -> Any:
        return client(service, self.endpoint, self.stack.region)


@pytest.fixture(scope="session")
def cloud() -> Iterator[Cloud]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    server = start_moto("127.0.0.1", port)
    wait_until_up(endpoint, "us-east-1")
    stack = read_stack(ROOT)
    provision(stack, endpoint)
    # The steps' settings are the template's environment (any function has the shared names).
    settings = Settings.from_environ(
        {
            **stack.functions["PackageFunction"].environment,
            "AWS_ENDPOINT_URL": endpoint,
            "RENDER_THREADS": "2",
        }
    )
    records = seed_catalog(
        SAMPLES,
        client("s3", endpoint, stack.region),
        stack.physical["SourcesBucket"],
        bootstrap.catalog_repository(settings),
    )
    yield Cloud(endpoint, stack, settings, {record.name: record for record in records})
    server.stop()
