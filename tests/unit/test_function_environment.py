"""The local stack's cold starts (geoexport_local.functions.function_environment): a function's variables
apply while its module is imported and are gone after, and the rest of the process environment never
disappears meanwhile (render threads read their credentials and HOME from it while another environment
cold-starts)."""

from __future__ import annotations

import os
import threading

from geoexport_local.functions import function_environment


def test_other_threads_never_see_the_environment_emptied_during_a_cold_start() -> None:
    os.environ["GEOEXPORT_TEST_CREDENTIAL"] = "kept"
    before = dict(os.environ)
    missing = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal missing
        while not stop.is_set():
            if os.environ.get("GEOEXPORT_TEST_CREDENTIAL") != "kept":
                missing += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for index in range(300):
            with function_environment({"TASKS_TABLE": f"t{index}", "GEOEXPORT_TEST_CREDENTIAL": "kept"}):
                assert os.environ["TASKS_TABLE"] == f"t{index}"
                os.environ["SET_BY_AN_IMPORT"] = "1"  # what a module sets while it is imported goes too
    finally:
        stop.set()
        thread.join()
        del os.environ["GEOEXPORT_TEST_CREDENTIAL"]
    assert missing == 0
    assert {**os.environ, "GEOEXPORT_TEST_CREDENTIAL": "kept"} == before


def test_a_variable_the_function_overrides_gets_its_value_back() -> None:
    os.environ["GEOEXPORT_TEST_SHARED"] = "stack"
    try:
        with function_environment({"GEOEXPORT_TEST_SHARED": "function"}):
            assert os.environ["GEOEXPORT_TEST_SHARED"] == "function"
        assert os.environ["GEOEXPORT_TEST_SHARED"] == "stack"
    finally:
        del os.environ["GEOEXPORT_TEST_SHARED"]
