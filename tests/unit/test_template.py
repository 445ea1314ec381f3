"""template.yaml and its ASL, as the local stack reads them."""

import json

from geoexport_local.template import read_stack
from tests.support import ROOT

stack = read_stack(ROOT)


def test_routes_come_from_the_template_and_point_at_functions() -> None:
    routes = {(r.method, r.path): r.function for r in stack.routes}
    assert routes[("POST", "/export-tasks")] == "CreateTaskFunction"
    assert routes[("GET", "/export-tasks/{task_id}")] == "GetTaskFunction"
    assert routes[("GET", "/storage")] == "StorageFunction"
    assert routes[("GET", "/health")] == "HealthFunction"
    assert routes[("POST", "/export-tasks/{task_id}/abort")] == "AbortTaskFunction"
    assert routes[("POST", "/create/roi")] == "CreateTaskFunction"
    assert routes[("GET", "/taskStatus/{job_id}")] == "GetTaskFunction"
    assert sorted(stack.schedules) == [("ExpiryFunction", 3600), ("ReconcileFunction", 300)]
    assert stack.reconciler == "ReconcileFunction"
    for function in routes.values():
        code = stack.functions[function].code_dir / "app.py"
        assert code.exists(), code
    assert stack.routes[0].pattern.match("/health")
    route = next(r for r in stack.routes if r.path == "/export-tasks/{task_id}")
    match = route.pattern.match("/export-tasks/abc")
    assert match and match.group("task_id") == "abc"


def test_state_machine_chains_the_steps_with_retry_and_catch() -> None:
    (definition,) = stack.state_machines.values()
    assert "${" not in definition
    asl = json.loads(definition)
    states = asl["States"]
    assert asl["StartAt"] == "Clip"
    assert [states["Clip"]["Next"], states["Package"]["Next"], states["Upload"]["Next"]] == [
        "ByDomain",
        "Upload",
        "Notify",
    ]
    # VECTOR exports are packaged by their own function (pyogrio's GDAL), then join the same path.
    choice = states["ByDomain"]
    assert choice["Default"] == "Package" and states["PackageVector"]["Next"] == "Upload"
    # A VECTOR selection that ran out of Clip's time budget loops back into Clip (it resumes at its cursor).
    assert choice["Choices"] == [
        {"Variable": "$.more", "BooleanEquals": True, "Next": "Clip"},
        {"Variable": "$.domain", "StringEquals": "VECTOR", "Next": "PackageVector"},
        {"Variable": "$.items", "NumericGreaterThan": 0, "Next": "RenderParts"},
    ]
    assert states["Clip"]["ResultSelector"]["domain.$"] == "$.Payload.domain"
    assert states["Clip"]["ResultSelector"]["more.$"] == "$.Payload.more"
    # A big GeoPackage: a Distributed Map reads the work items from S3 (the exports bucket), renders each
    # with the Package function (a failure after retries is left for Merge), then Merge joins the path.
    fan = states["RenderParts"]
    assert fan["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED" and "ItemBatcher" not in fan
    assert fan["ItemReader"]["Parameters"]["Bucket"] in stack.buckets
    assert fan["ItemReader"]["Parameters"]["Key.$"] == "$.itemsKey"
    assert fan["MaxConcurrencyPath"] == "$.concurrency" and fan["ResultPath"] is None
    assert fan["Next"] == "Merge" and states["Merge"]["Next"] == "Upload"
    part = fan["ItemProcessor"]["States"]["RenderPart"]
    assert part["Parameters"]["FunctionName"] == states["Package"]["Parameters"]["FunctionName"]
    assert part["Catch"][0]["Next"] == "PartNotRendered"
    assert states["Merge"]["Parameters"]["Payload"]["merge"] is True
    function_arns = {f.arn for f in stack.functions.values()}
    for name in ("Clip", "Package", "PackageVector", "Merge", "Upload", "Notify"):  # MarkFailed or success
        state = states[name]
        assert state["Parameters"]["FunctionName"] in function_arns
        assert any("TransientError" in r["ErrorEquals"] for r in state["Retry"])
        assert "TransientError" not in json.dumps(state["Catch"])
        paused, catch = state["Catch"]  # a paused task stops at the boundary; anything else fails it
        assert paused == {"ErrorEquals": ["TaskPaused"], "ResultPath": "$.paused", "Next": "Paused"}
        assert catch["ErrorEquals"] == ["States.ALL"]
        assert states[catch["Next"]]["Next"] == "MarkFailed"
    assert states["Paused"] == {**states["Paused"], "Type": "Pass", "Result": {"paused": True}, "End": True}
    assert (
        states["MarkFailed"]["Parameters"]["FunctionName"] == states["Notify"]["Parameters"]["FunctionName"]
    )


def test_exports_bucket_lifecycle_implements_expiry() -> None:
    exports = next(props for name, props in stack.buckets.items() if "exports" in name)
    rules = {rule["Id"]: rule for rule in exports["LifecycleConfiguration"]["Rules"]}
    retention = int(stack.functions["NotifyFunction"].environment["EXPORT_RETENTION_DAYS"])
    assert int(rules["expire-exports"]["ExpirationInDays"]) == retention + 1
    assert rules["expire-exports"]["Prefix"] == "exports/"
    assert int(rules["expire-scratch"]["ExpirationInDays"]) == 1


def test_every_function_gets_its_resources_by_reference() -> None:
    create = stack.functions["CreateTaskFunction"].environment
    assert create["STATE_MACHINE_ARN"].startswith("arn:aws:states:")
    assert create["TASKS_TABLE"] in stack.tables
    assert create["EXPORTS_BUCKET"] in stack.buckets


def test_stage_throttles_agree_with_the_plans_and_brake_the_token_endpoints() -> None:
    """Issue 12: the stage allowed 20 rps while the Standard plan promised each client 50."""
    from geoexport_local.template import load_yaml

    template = load_yaml(ROOT / "template.yaml")
    parameters = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    settings = {s["ResourcePath"]: s for s in template["Resources"]["Api"]["Properties"]["MethodSettings"]}

    def value(setting: dict[str, object], name: str) -> float:
        ref = setting[name]
        return float(parameters[ref["Ref"]] if isinstance(ref, dict) else ref)  # type: ignore[index,arg-type]

    stage = settings["/*"]
    for plan in ("Standard", "Restricted"):
        assert value(stage, "ThrottlingRateLimit") >= float(parameters[f"{plan}RateLimit"])
        assert value(stage, "ThrottlingBurstLimit") >= float(parameters[f"{plan}BurstLimit"])
    for path in ("/~1auth~1token", "/~1auth~1get_bearer_token"):  # routes outside every usage plan
        assert settings[path]["HttpMethod"] == "POST"
        assert value(settings[path], "ThrottlingRateLimit") < value(stage, "ThrottlingRateLimit")
    token_env = template["Resources"]["TokenFunction"]["Properties"]["Environment"]["Variables"]
    assert {"AUTH_CLIENT_LOCK_THRESHOLD", "AUTH_SOURCE_LOCK_THRESHOLD"} <= set(token_env)
