"""The local stack's processes keep the garbage collector's walks short (geoexport_local.__main__): what is
alive is frozen every few seconds, and cyclic garbage is collected before each freeze, not kept by it."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc, time, weakref
import geoexport_local.__main__ as local

class Node:
    pass

local.FREEZE_EVERY = 0.2
kept = [Node() for _ in range(1000)]  # alive: frozen out of the collector's walks
garbage = Node()
garbage.me = garbage  # a cycle: only the collector frees it
dead = weakref.ref(garbage)
del garbage
local._quiet_collector()
time.sleep(1.0)
print(gc.get_freeze_count() >= 1000, dead() is None, gc.get_threshold()[0])
"""


def test_live_objects_are_frozen_and_cycles_collected_first() -> None:
    answer = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    assert answer.stdout.split() == ["True", "True", "50000"], answer.stderr
