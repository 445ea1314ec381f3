"""The local stack's group commit (geoexport_local.durable.GroupCommit): a DynamoDB write is answered only
once its items are committed, concurrent writes share commits, the last write of a key is the one kept,
and a failed commit fails the writes it held."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from geoexport_local.durable import DURABLE, StateStore
from geoexport_local.emulator import serialise_dynamodb_writes
from tests.support import create_ranged_table


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[tuple[Any, StateStore, list[int]]]:
    """A DynamoDB client whose writes are saved in a store (and how many commits the store made)."""
    serialise_dynamodb_writes()
    store = StateStore(tmp_path)
    commits = [0]
    transaction = store.transaction

    @contextlib.contextmanager
    def counted() -> Iterator[sqlite3.Connection]:
        with transaction() as db:
            yield db
        commits[0] += 1

    store.transaction = counted  # type: ignore[method-assign]
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        create_ranged_table(client, "t")
        DURABLE.store = store
        try:
            yield client, store, commits
        finally:
            DURABLE.store = None
            store.close()


def on_disk(store: StateStore, pk: str, sk: str) -> dict[str, Any] | None:
    """The item as another connection reads it from the database file."""
    with sqlite3.connect(store.directory / "state.sqlite") as db:
        row = db.execute(
            "SELECT item FROM ddb WHERE tbl = 't' AND hk = ? AND rk = ?",
            (json.dumps({"S": pk}, separators=(",", ":")), json.dumps({"S": sk}, separators=(",", ":"))),
        ).fetchone()
    return json.loads(row[0]) if row else None


def test_every_answered_write_is_committed_and_concurrent_writes_share_commits(
    stored: tuple[Any, StateStore, list[int]],
) -> None:
    client, store, commits = stored
    missing: list[str] = []

    def writer(n: int) -> None:
        for i in range(25):
            key = f"w{n}-{i}"
            client.put_item(TableName="t", Item={"pk": {"S": key}, "sk": {"S": "HEAD"}, "n": {"N": str(i)}})
            if on_disk(store, key, "HEAD") is None:  # answered: it must be in the file already
                missing.append(key)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert missing == []
    assert commits[0] < 200  # one commit per write would be 200


def test_the_last_write_of_a_key_is_the_one_kept(stored: tuple[Any, StateStore, list[int]]) -> None:
    client, store, _ = stored
    key = {"pk": {"S": "k"}, "sk": {"S": "1"}}
    for n in range(5):
        client.put_item(TableName="t", Item={**key, "n": {"N": str(n)}})
    assert on_disk(store, "k", "1") == {**key, "n": {"N": "4"}}
    client.transact_write_items(TransactItems=[{"Delete": {"TableName": "t", "Key": key}}])
    assert on_disk(store, "k", "1") is None


def test_a_failed_commit_fails_the_write(stored: tuple[Any, StateStore, list[int]]) -> None:
    client, store, _ = stored

    @contextlib.contextmanager
    def broken() -> Iterator[sqlite3.Connection]:
        raise sqlite3.OperationalError("disk I/O error")
        yield  # pragma: no cover

    store.transaction = broken  # type: ignore[method-assign]
    with pytest.raises(Exception, match="disk I/O error"):
        client.put_item(TableName="t", Item={"pk": {"S": "f"}, "sk": {"S": "1"}})
