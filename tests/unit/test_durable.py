"""The local stack's state store (issue 11): format versioning, one stack per directory, atomic blobs,
and which items a DynamoDB write can touch."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from geoexport_local.durable import FORMAT, DataDirError, StateStore, touched_items


def test_a_directory_written_in_another_format_is_refused_with_what_to_do(tmp_path: Path) -> None:
    StateStore(tmp_path).close()
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        db.execute("UPDATE meta SET value = ? WHERE name = 'format'", (str(FORMAT + 1),))
    with pytest.raises(DataDirError) as refused:
        StateStore(tmp_path)
    message = str(refused.value)
    assert f"format {FORMAT + 1}" in message and f"reads format {FORMAT}" in message
    assert "make clean-data" in message


def test_two_stacks_cannot_share_a_data_directory(tmp_path: Path) -> None:
    first = StateStore(tmp_path)
    with pytest.raises(DataDirError, match="in use by another running geoexport stack"):
        StateStore(tmp_path)
    first.close()
    StateStore(tmp_path).close()  # free again once the first one is closed


def test_blobs_are_content_addressed_and_unreferenced_ones_are_collected(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    kept, dropped = store.put_blob(b"kept"), store.put_blob(b"dropped")
    assert store.put_blob(b"kept") == kept and store.read_blob(kept) == b"kept"
    (store.blobs / ".half-written.part").write_bytes(b"a crash mid-write")
    with store.transaction() as db:
        db.execute("INSERT INTO s3_objects VALUES ('b', 'k', x'00', ?)", (kept,))
    assert store.collect_garbage() == 2
    assert sorted(p.name for p in store.blobs.iterdir()) == [kept]
    assert not (store.blobs / dropped).exists()
    store.close()


def test_a_failed_transaction_commits_nothing(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with pytest.raises(RuntimeError), store.transaction() as db:
        db.execute("INSERT INTO ddb VALUES ('t', 'h', '', '{}')")
        raise RuntimeError("the write failed")
    assert store.rows("SELECT COUNT(*) FROM ddb") == [(0,)]
    store.close()


def test_touched_items_name_every_key_a_write_can_change() -> None:
    key = {"id": {"S": "a"}}
    assert touched_items("put_item", {"table_name": "T", "item_attrs": {**key, "x": {"N": "1"}}}) == [
        ("T", {**key, "x": {"N": "1"}})
    ]
    assert touched_items("update_item", {"table_name": "T", "key": key}) == [("T", key)]
    assert touched_items("delete_item", {"table_name": "T", "key": key}) == [("T", key)]
    transaction = [
        {"Put": {"TableName": "A", "Item": key}},
        {"Update": {"TableName": "B", "Key": {"pk": {"S": "p"}}}},
        {"ConditionCheck": {"TableName": "C", "Key": key}},
        {"Delete": {"TableName": "D", "Key": key}},
    ]
    assert touched_items("transact_write_items", {"transact_items": transaction}) == [
        ("A", key),
        ("B", {"pk": {"S": "p"}}),
        ("D", key),
    ]
