"""A batch of features is stored in transactions DynamoDB accepts: at most 100 items and 4 MB each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from geoexport.features.feature import Feature
from geoexport.features.repository import FeatureRepository


class Recorder:
    """Stands in for the DynamoDB client: records each transaction's item count and bytes."""

    class exceptions:
        class TransactionCanceledException(Exception):
            pass

        class ClientError(Exception):
            pass

    def __init__(self) -> None:
        self.transactions: list[tuple[int, int]] = []

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> None:
        size = sum(len(str(item)) for item in TransactItems)
        self.transactions.append((len(TransactItems), size))


def feature(index: int, padding: int) -> Feature:
    now = datetime.now(UTC)
    return Feature.model_validate(
        {"id": f"f{index}", "urn": f"URN:FEATURE:DATA:t:{index:036d}:V1", "model": "m", "entityType": "DATA",
         "geometry": None, "properties": {"pad": "x" * padding}, "files": [], "version": 1,
         "createdAt": now, "updatedAt": now}
    )  # fmt: skip


def test_transactions_stay_within_dynamodbs_limits() -> None:
    db = Recorder()
    repository = FeatureRepository(db, "t")  # type: ignore[arg-type]
    small = [(f"b{i}", feature(i, 10), '"e"') for i in range(70)]
    assert repository.create_many(small, "owner") == {}
    # 49 features at most: claim and HEAD each (version 1 is HEAD until superseded), one journal entry
    assert sorted(count for count, _ in db.transactions) == [43, 99]
    db.transactions.clear()
    large = [(f"b{i}", feature(i, 300_000), '"e"') for i in range(24)]  # 300 KB each, once per feature
    assert repository.create_many(large, "owner") == {}
    assert (
        sum(count for count, _ in db.transactions) == 48 + len(db.transactions) and len(db.transactions) > 1
    )
    assert all(size < 4_000_000 for _, size in db.transactions), db.transactions


def test_index_entries_go_in_their_features_transaction_and_count_toward_its_limit() -> None:
    db = Recorder()
    repository = FeatureRepository(db, "t")  # type: ignore[arg-type]
    created = [(f"b{i}", feature(i, 10), '"e"') for i in range(70)]
    entries = {  # 2 to 5 each: the owner entry and 1 to 4 cell entries
        base: [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": f"G#{n}"}, "sk": {"S": base}}}}
            for n in range(2 + i % 4)
        ]
        for i, (base, _, _) in enumerate(created)
    }
    assert repository.create_many(created, "owner", entries) == {}
    counts = sorted((count for count, _ in db.transactions), reverse=True)  # they run at once
    assert all(count <= 100 for count in counts), counts
    assert sum(counts) == 70 * 2 + sum(map(len, entries.values())) + len(counts)  # one journal entry each
    assert all(count > 100 - 2 - 5 - 1 for count in counts[:-1]), counts  # full, but for one
