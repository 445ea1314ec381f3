"""The CLI's own logic, without a network: where settings come from, how ROI flags become a request, how
API errors read, and that its copies of the service's names stay equal to them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from geoexport_cli import DEFAULT_SCOPES
from geoexport_cli import PLANS as CLI_PLANS
from geoexport_cli.api import CliError, describe_error, settings
from geoexport_cli.exports import human, roi_of

from geoexport.auth.clients import ALL_SCOPES
from geoexport.auth.usage import PLANS


def test_names_copied_for_a_fast_help_stay_equal() -> None:
    assert CLI_PLANS == PLANS and ",".join(ALL_SCOPES) == DEFAULT_SCOPES


def test_settings_come_from_flags_then_environment_then_config_then_local_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "local.json"
    state.write_text(json.dumps({"api": "http://local", "client_id": "demo", "client_secret": "s0"}))
    monkeypatch.setenv("GEOEXPORT_STATE", str(state))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("GEOEXPORT_API_URL", "GEOEXPORT_CLIENT_ID", "GEOEXPORT_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    assert settings(None, None, None).api == "http://local"
    (tmp_path / "config" / "geoexport").mkdir(parents=True)
    (tmp_path / "config" / "geoexport" / "config.json").write_text(json.dumps({"api": "https://aws/"}))
    assert settings(None, None, None).api == "https://aws"  # the config file, trailing slash dropped
    monkeypatch.setenv("GEOEXPORT_API_URL", "https://env")
    monkeypatch.setenv("GEOEXPORT_CLIENT_ID", "env-client")
    got = settings(None, None, None)
    assert (got.api, got.client_id, got.client_secret) == ("https://env", "env-client", "s0")
    assert settings("https://flag", None, None).api == "https://flag"
    state.unlink()
    with pytest.raises(CliError, match="--client-secret"):
        settings(None, None, None)


def args(**given: str) -> argparse.Namespace:
    return argparse.Namespace(**{"bbox": None, "wkt": None, "geojson": None, "country": None, **given})


def test_roi_flags(tmp_path: Path) -> None:
    assert roi_of(args(bbox="1,2,3,4"))["coordinates"][0] == [[1, 2], [3, 2], [3, 4], [1, 4], [1, 2]]
    assert roi_of(args(wkt="POINT(1 2)")) == "POINT(1 2)"
    assert roi_of(args(country="FRA")) == {"country": "FRA"}
    path = tmp_path / "roi.geojson"
    path.write_text('{"type": "Polygon", "coordinates": []}')
    assert roi_of(args(geojson=str(path)))["type"] == "Polygon"
    assert roi_of(args()) is None
    with pytest.raises(CliError, match="one ROI"):
        roi_of(args(bbox="1,2,3,4", country="FRA"))
    with pytest.raises(CliError, match="minLon"):
        roi_of(args(bbox="1,2"))


def test_api_errors_read_as_sentences() -> None:
    body = json.dumps({"message": "bad ROI", "errors": [{"field": "ROI", "reason": "too few points"}]})
    assert describe_error(400, body.encode()) == "400 bad ROI (ROI: too few points)"
    assert describe_error(502, b"<html>gateway</html>") == "502 <html>gateway</html>"
    assert human(2048) == "2.0 KiB" and human(12) == "12 B"


def test_a_western_bbox_is_not_taken_for_a_flag() -> None:
    from geoexport_cli import _joined

    assert _joined(["export", "create", "--bbox", "-78.2,24.2,-77.4,25"]) == [
        "export",
        "create",
        "--bbox=-78.2,24.2,-77.4,25",
    ]
