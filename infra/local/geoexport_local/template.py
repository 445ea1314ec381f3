"""Read template.yaml (SAM) into what the local stack must create: buckets, tables, functions, routes, ASL."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT = "123456789012"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags (!Ref, !GetAtt, !Sub ...) as mappings."""


def _tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_yaml(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)
    return document


@dataclass
class Function:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int


@dataclass
class Route:
    method: str
    path: str  # API Gateway form, e.g. /export-tasks/{task_id}
    function: str  # logical id
    authorizer: str | None = None  # logical id of the TOKEN authorizer function, None for public routes
    api_key_required: bool = False  # counted against the caller's usage plan (key from the authorizer)

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", self.path)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")


def routes_for(routes: list[Route], path: str) -> list[tuple[Route, re.Match[str]]]:
    """The routes serving ``path``, as API Gateway ranks them: a static part beats a {variable}."""
    found = [(route, match) for route in routes if (match := route.pattern.match(path))]
    return sorted(found, key=lambda pair: pair[0].path.count("{"))


def serving_route(routes: list[Route], method: str, path: str) -> Route | None:
    return next((r for r, _ in routes_for(routes, path) if r.method in (method.upper(), "ANY")), None)


@dataclass
class QueueEvent:
    """An SQS event source mapping: the function gets batches of the queue's messages."""

    function: str  # logical id
    queue_name: str
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    partial_failures: bool = False  # FunctionResponseTypes: [ReportBatchItemFailures]


@dataclass
class StreamEvent:
    """A DynamoDB stream event source mapping: the function gets batches of a table's changes."""

    function: str  # logical id
    table: str  # physical table name
    batch_size: int = 100
    partial_failures: bool = False  # FunctionResponseTypes: [ReportBatchItemFailures]
    max_retries: int = -1  # MaximumRetryAttempts (-1: until the record expires)


@dataclass
class Stack:
    name: str
    region: str
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)  # physical name -> properties
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)  # by logical id
    routes: list[Route] = field(default_factory=list)
    state_machines: dict[str, str] = field(default_factory=dict)  # name -> definition JSON
    schedules: list[tuple[str, float]] = field(default_factory=list)  # (function logical id, seconds)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)  # queue name -> properties
    usage_plans: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> properties
    event_buses: list[str] = field(default_factory=list)  # names
    event_rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> properties
    queue_events: list[QueueEvent] = field(default_factory=list)  # SQS event source mappings
    stream_events: list[StreamEvent] = field(default_factory=list)  # DynamoDB stream mappings
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> properties
    email_identities: list[str] = field(default_factory=list)  # SES identities (verified locally)
    schedule_groups: list[str] = field(default_factory=list)  # EventBridge Scheduler groups
    outputs: dict[str, Any] = field(default_factory=dict)
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> name/ARN for Ref

    @property
    def reconciler(self) -> str | None:
        """The scheduled function that finishes interrupted exports (also run once at every start)."""
        return "ReconcileFunction" if "ReconcileFunction" in self.functions else None


_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def rate_seconds(expression: str) -> float:
    """'rate(1 hour)' -> 3600.0 (the local stack runs only rate() schedules; cron() is AWS's alone)."""
    match = re.fullmatch(r"rate\((\d+)\s+(\w+)\)", expression.strip())
    if not match or match.group(2) not in _UNITS:
        raise ValueError(f"template.yaml: the local stack cannot run the schedule {expression!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


class Resolver:
    """Evaluates the intrinsic functions the template uses against local names and ARNs."""

    def __init__(self, stack: Stack, parameters: dict[str, str], attributes: dict[str, dict[str, str]]):
        self.stack = stack
        self.parameters = parameters
        self.attributes = attributes
        self.pseudo = {
            "AWS::Region": stack.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": stack.name,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::Partition": "aws",
        }

    def ref(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.stack.physical:
            return self.stack.physical[name]
        raise KeyError(f"template.yaml: !Ref {name} names nothing the local stack knows")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.attributes[logical][attribute]
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))

                def substitute(match: re.Match[str]) -> str:
                    token = match.group(1)
                    if token in extra:
                        return str(extra[token])
                    if "." in token:
                        logical, attribute = token.split(".", 1)
                        return self.attributes[logical][attribute]
                    return self.ref(token)

                return re.sub(r"\$\{([^}!]+)\}", substitute, text)
            if key == "Fn::Join":
                return str(arg[0]).join(str(self(v)) for v in arg[1])
        return {k: self(v) for k, v in value.items()}


def _name(stack: Stack, logical: str, kind: str) -> dict[str, str]:
    """Local physical names and ARNs for one resource; returns its GetAtt attributes."""
    region, name = stack.region, f"{stack.name}-{logical}"
    if kind == "AWS::S3::Bucket":
        name = f"{stack.name}-{_kebab(logical)}"
        stack.physical[logical] = name
        return {"Arn": f"arn:aws:s3:::{name}"}
    if kind == "AWS::DynamoDB::Table":
        stack.physical[logical] = name
        arn = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"
        return {"Arn": arn, "StreamArn": f"{arn}/stream/local"}  # the poller finds the real label
    if kind == "AWS::Serverless::Function":
        stack.physical[logical] = name
        return {"Arn": f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"}
    if kind == "AWS::Serverless::StateMachine":
        arn = f"arn:aws:states:{region}:{ACCOUNT}:stateMachine:{name}"
        stack.physical[logical] = arn
        return {"Arn": arn, "Name": name}
    if kind == "AWS::SQS::Queue":
        url = f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{name}"  # the emulator reads the name
        stack.physical[logical] = url
        return {"Arn": f"arn:aws:sqs:{region}:{ACCOUNT}:{name}", "QueueName": name, "QueueUrl": url}
    if kind == "AWS::Events::EventBus":
        name = f"{stack.name}-{_kebab(logical)}"
        stack.physical[logical] = name  # read_stack puts the template's Name here when it has one
        return {"Arn": f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{name}", "Name": name}
    if kind == "AWS::Events::Rule":
        stack.physical[logical] = name
        return {"Arn": f"arn:aws:events:{region}:{ACCOUNT}:rule/{name}"}
    if kind == "AWS::Scheduler::ScheduleGroup":
        name = f"{stack.name}-{_kebab(logical)}"
        stack.physical[logical] = name  # read_stack puts the template's Name here when it has one
        return {"Arn": f"arn:aws:scheduler:{region}:{ACCOUNT}:schedule-group/{name}", "Name": name}
    if kind == "AWS::IAM::Role":
        stack.physical[logical] = name
        return {"Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}
    if kind == "AWS::SecretsManager::Secret":
        stack.physical[logical] = name  # moto takes the name wherever a SecretId is expected
        return {"Arn": name}
    if kind == "AWS::Serverless::Api":
        stack.physical[logical] = "local"
        stack.physical[f"{logical}.Stage"] = "v1"  # SAM's `!Ref Api.Stage`
        return {}
    stack.physical[logical] = logical  # replaced by the emulator's id where it makes one (usage plans)
    return {}


def _authorizer(resources: dict[str, Any], event_props: dict[str, Any]) -> str | None:
    """The authorizer function guarding an Api event, from its Api's Auth (None when public)."""
    if (event_props.get("Auth") or {}).get("Authorizer") == "NONE":
        return None
    api = (
        event_props.get("RestApiId", {}).get("Ref")
        if isinstance(event_props.get("RestApiId"), dict)
        else None
    )
    auth = resources.get(api or "", {}).get("Properties", {}).get("Auth", {})
    name = (event_props.get("Auth") or {}).get("Authorizer") or auth.get("DefaultAuthorizer")
    if not name:
        return None
    arn = auth["Authorizers"][name]["FunctionArn"]
    return str(arn["Fn::GetAtt"][0])


def _api_key_required(resources: dict[str, Any], event_props: dict[str, Any]) -> bool:
    """The event's Auth.ApiKeyRequired, else its Api's default."""
    own = (event_props.get("Auth") or {}).get("ApiKeyRequired")
    if own is not None:
        return bool(own)
    api = event_props.get("RestApiId", {})
    api_name = api.get("Ref") if isinstance(api, dict) else None
    auth = resources.get(api_name or "", {}).get("Properties", {}).get("Auth", {})
    return bool(auth.get("ApiKeyRequired", False))


def _add_function(
    stack: Stack,
    root: Path,
    logical: str,
    props: dict[str, Any],
    globals_: dict[str, Any],
    resolve: Resolver,
    arn: str,
    resources: dict[str, Any],
) -> None:
    env = dict(resolve(globals_.get("Environment", {}).get("Variables", {})))
    env.update(resolve(props.get("Environment", {}).get("Variables", {})))
    stack.functions[logical] = Function(
        logical_id=logical,
        name=stack.physical[logical],
        arn=arn,
        code_dir=root / props["CodeUri"],
        handler=props["Handler"],
        environment={k: str(v) for k, v in env.items()},
        timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
    )
    for event in props.get("Events", {}).values():
        if event["Type"] in ("Api", "HttpApi"):
            method = str(event["Properties"]["Method"]).upper()
            authorizer = _authorizer(resources, event["Properties"])
            stack.routes.append(
                Route(
                    method,
                    event["Properties"]["Path"],
                    logical,
                    authorizer,
                    _api_key_required(resources, event["Properties"]),
                )
            )
        elif event["Type"] in ("Schedule", "ScheduleV2"):
            expression = event["Properties"].get("Schedule") or event["Properties"]["ScheduleExpression"]
            stack.schedules.append((logical, rate_seconds(str(expression))))
        elif event["Type"] == "DynamoDB":
            properties = event["Properties"]
            stream = str(resolve(properties["Stream"]))  # arn:...:table/<name>/stream/<label>
            stack.stream_events.append(
                StreamEvent(
                    function=logical,
                    table=stream.split(":table/", 1)[1].split("/", 1)[0],
                    batch_size=int(properties.get("BatchSize", 100)),
                    partial_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
                    max_retries=int(properties.get("MaximumRetryAttempts", -1)),
                )
            )
        elif event["Type"] == "SQS":
            arn = str(resolve(event["Properties"]["Queue"]))
            name = arn.rsplit(":", 1)[-1]
            stack.queue_events.append(
                QueueEvent(
                    function=logical,
                    queue_name=name,
                    queue_url=f"https://sqs.{stack.region}.amazonaws.com/{ACCOUNT}/{name}",
                    queue_arn=arn,
                    batch_size=int(event["Properties"].get("BatchSize", 10)),
                    partial_failures="ReportBatchItemFailures"
                    in event["Properties"].get("FunctionResponseTypes", []),
                )
            )


def _named_resources(
    stack: Stack, resources: dict[str, Any], resolve: Resolver, attributes: dict[str, dict[str, str]]
) -> None:
    """Resources with a Name property: Ref gives that name, so it is set before anyone reads it."""
    region = stack.region
    for logical, resource in resources.items():
        if "Name" not in resource.get("Properties", {}):
            continue
        name = str(resolve(resource["Properties"]["Name"]))
        if resource["Type"] == "AWS::Events::EventBus":
            stack.physical[logical] = name
            attributes[logical].update(Name=name, Arn=f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{name}")
        elif resource["Type"] == "AWS::Scheduler::ScheduleGroup":
            stack.physical[logical] = name
            arn = f"arn:aws:scheduler:{region}:{ACCOUNT}:schedule-group/{name}"
            attributes[logical].update(Name=name, Arn=arn)
        elif resource["Type"] == "AWS::Serverless::StateMachine":
            arn = f"arn:aws:states:{region}:{ACCOUNT}:stateMachine:{name}"
            stack.physical[logical] = arn
            attributes[logical].update(Name=name, Arn=arn)


def read_stack(
    root: Path,
    stack_name: str = "geoexport",
    region: str = "us-east-1",
    overrides: dict[str, str] | None = None,
) -> Stack:
    template = load_yaml(root / "template.yaml")
    stack = Stack(stack_name, region)
    parameters = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    unknown = sorted(set(overrides or {}) - set(parameters))
    if unknown:
        raise ValueError(f"template.yaml has no parameter {', '.join(unknown)}")
    parameters.update(overrides or {})
    resources: dict[str, Any] = template["Resources"]
    attributes = {logical: _name(stack, logical, resource["Type"]) for logical, resource in resources.items()}
    resolve = Resolver(stack, parameters, attributes)
    _named_resources(stack, resources, resolve, attributes)
    function_globals = template.get("Globals", {}).get("Function", {})
    for logical, resource in resources.items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::S3::Bucket":
            stack.buckets[stack.physical[logical]] = resolve(props)
        elif kind == "AWS::DynamoDB::Table":
            stack.tables[stack.physical[logical]] = resolve(props)
        elif kind == "AWS::Serverless::Function":
            _add_function(
                stack, root, logical, props, function_globals, resolve, attributes[logical]["Arn"], resources
            )
        elif kind == "AWS::ApiGateway::UsagePlan":
            stack.usage_plans[logical] = resolve(props)
        elif kind == "AWS::SQS::Queue":
            stack.queues[attributes[logical]["QueueName"]] = resolve(props)
        elif kind == "AWS::SecretsManager::Secret":
            stack.secrets[stack.physical[logical]] = resolve(props)
        elif kind == "AWS::Events::EventBus":
            stack.event_buses.append(stack.physical[logical])
        elif kind == "AWS::Events::Rule":
            stack.event_rules[stack.physical[logical]] = resolve(props)
        elif kind == "AWS::SES::EmailIdentity":
            stack.email_identities.append(str(resolve(props["EmailIdentity"])))
        elif kind == "AWS::Scheduler::ScheduleGroup":
            stack.schedule_groups.append(stack.physical[logical])
        elif kind == "AWS::Serverless::StateMachine":
            definition = (root / props["DefinitionUri"]).read_text()
            for key, value in resolve(props.get("DefinitionSubstitutions", {})).items():
                definition = definition.replace("${" + key + "}", str(value))
            json.loads(definition)  # must still be JSON after substitution
            stack.state_machines[attributes[logical]["Name"]] = definition
    stack.outputs = {name: spec.get("Value") for name, spec in template.get("Outputs", {}).items()}
    return stack
