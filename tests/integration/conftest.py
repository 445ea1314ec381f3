"""A moto server over HTTP, provisioned from template.yaml, with the sample catalog seeded into it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from geoexport import aws, bootstrap
from geoexport.auth.clients import ClientRepository
from geoexport.models import CatalogRecord
from geoexport.notify import changes
from geoexport.notify.delivery import Deliveries
from geoexport.settings import Settings
from geoexport.tasks.repository import from_item
from geoexport_local.durable import DURABLE, StateStore
from geoexport_local.emulator import client, start_provisioned
from geoexport_local.seed import seed_catalog
from geoexport_local.template import Stack, read_stack
from tests.support import ROOT, SAMPLES, free_port

OWNER = "integration-client"


@dataclass
class Cloud:
    endpoint: str
    stack: Stack
    settings: Settings
    records: dict[str, CatalogRecord]
    owner: str = OWNER  # a registered client: callbacks are signed with its secret (never sent unsigned)

    def client(self, service: str) -> Any:
        return client(service, self.endpoint, self.stack.region)

    def task_changes(self) -> TaskChanges:
        """The tasks table's stream from now on, as TaskChangesFunction receives it."""
        return TaskChanges(self)


class TaskChanges:
    """Reads the tasks table's stream (moto's) and hands each change to the callbacks' one entry point."""

    def __init__(self, cloud: Cloud) -> None:
        self._streams = cloud.client("dynamodbstreams")
        table = cloud.client("dynamodb").describe_table(TableName=cloud.stack.physical["TasksTable"])
        arn = table["Table"]["LatestStreamArn"]
        shards = self._streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        self._iterators = [
            self._streams.get_shard_iterator(StreamArn=arn, ShardId=s["ShardId"], ShardIteratorType="LATEST")[
                "ShardIterator"
            ]
            for s in shards
        ]
        self._tasks = bootstrap.task_repository(cloud.settings)

    def deliver(self, deliveries: Deliveries) -> int:
        """React to every change since the last call; answers how many sent callbacks."""
        sent = 0
        for index, iterator in enumerate(self._iterators):
            answer = self._streams.get_records(ShardIterator=iterator)
            self._iterators[index] = answer["NextShardIterator"]
            for record in answer["Records"]:
                images = record["dynamodb"]
                old = from_item(images["OldImage"]) if "OldImage" in images else None
                new = from_item(images["NewImage"]) if "NewImage" in images else None
                sent += changes.react(old, new, self._tasks, deliveries)
        return sent


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    """A state store attached to the emulator (as the local stack's data directory): writes are saved."""
    state = StateStore(tmp_path)
    DURABLE.store = state
    try:
        yield state
    finally:
        DURABLE.store = None
        state.close()


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
    # Unit tests' in-process mocks may have left a session holding their fake credentials; links signed
    # with those would (rightly) fail the emulator's presigned-link check.
    aws.reset()
    stack = read_stack(ROOT)
    # The whole stack's settings: every function's environment from the template.
    server, environment = start_provisioned(stack, port)
    settings = Settings.from_environ({**environment, "RENDER_THREADS": "2"})
    records = seed_catalog(
        SAMPLES,
        client("s3", endpoint, stack.region),
        stack.physical["SourcesBucket"],
        bootstrap.catalog_repository(settings),
    )
    ClientRepository(client("dynamodb", endpoint, stack.region), stack.physical["ClientsTable"]).create(
        "integration", client_id=OWNER
    )
    yield Cloud(endpoint, stack, settings, {record.name: record for record in records})
    server.stop()
