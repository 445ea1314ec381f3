"""The emulator's partitions (geoexport_local.emulator.Partition): a dict whose range keys come out in order
for a Query, whatever writes came before or after the first Query."""

from __future__ import annotations

import copy
import pickle
import random

from moto.dynamodb.models.dynamo_type import DynamoType

from geoexport_local.emulator import Partition


def key(text: str) -> DynamoType:
    """A range key as moto holds it."""
    return DynamoType({"S": text})


def texts(keys: object) -> list[str]:
    return [k.value for k in keys]  # type: ignore[attr-defined]


def test_keys_stay_in_order_through_every_kind_of_write() -> None:
    rng = random.Random(7)
    partition, reference = Partition(), {}
    for step in range(3000):
        key_ = key(f"{rng.randrange(400):04d}")
        action = rng.random()
        if action < 0.5:
            partition[key_] = reference[key_.value] = step
        elif action < 0.65:
            assert partition.pop(key_, None) == reference.pop(key_.value, None)
        elif action < 0.7 and key_.value in reference:
            del partition[key_]
            del reference[key_.value]
        elif action < 0.72:
            extra = {f"{rng.randrange(400):04d}": step for _ in range(3)}
            partition.update({key(text): value for text, value in extra.items()})
            reference.update(extra)
        elif action < 0.73:
            assert partition.setdefault(key_, step) == reference.setdefault(key_.value, step)
        if step % 50 == 0:  # a Query now and then: before it, the order is built; after it, kept
            low, high = sorted([f"{rng.randrange(400):04d}", f"{rng.randrange(400):04d}"])
            found = texts(partition.irange(key(low), key(high)))
            assert found == sorted(k for k in reference if low <= k <= high)
            assert texts(partition.irange(None, None, reverse=True)) == sorted(reference, reverse=True)
    assert {k.value: v for k, v in partition.items()} == reference


def test_copies_are_partitions_of_their_own() -> None:
    partition = Partition()
    for text in ("b", "a", "c"):
        partition[key(text)] = [text]
    assert texts(partition.irange(None, None)) == ["a", "b", "c"]
    copied = copy.deepcopy(partition)
    copied[key("0")] = ["0"]
    copied[key("a")].append("changed")
    assert texts(copied.irange(None, None)) == ["0", "a", "b", "c"]
    assert texts(partition.irange(None, None)) == ["a", "b", "c"] and partition[key("a")] == ["a"]
    restored = pickle.loads(pickle.dumps(partition))
    assert isinstance(restored, Partition) and texts(restored.irange(key("b"), None)) == ["b", "c"]
