"""The local stack's JSON request parsing (geoexport_local.emulator.fast_json_requests): for every kind of
value (strings, numbers, booleans, blobs, timestamps, doubles, nested maps and lists, nulls, unknown keys)
the compiled parse gives exactly the parameters moto's own shape walk gives."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.session import get_session
from moto.core.parse import JSONParser

from geoexport_local.emulator import fast_json_requests

BLOB = base64.b64encode(b"\x00\x01binary\xff").decode()
EVERY_VALUE = {
    "s": {"S": "text"},
    "n": {"N": "1.5"},
    "b": {"B": BLOB},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [BLOB, BLOB]},
    "m": {"M": {"inner": {"L": [{"S": "x"}, {"M": {"deep": {"B": BLOB}}}, {"NULL": True}]}}},
    "l": {"L": [{"BOOL": False}, {"N": "3"}]},
    "null": {"NULL": True},
    "bool": {"BOOL": True},
}

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("dynamodb", "PutItem", {"TableName": "t", "Item": EVERY_VALUE, "ReturnValues": "NONE"}),
    (
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {
                    "Put": {
                        "TableName": "t",
                        "Item": EVERY_VALUE,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Delete": {"TableName": "t", "Key": {"pk": {"B": BLOB}}}},
                {
                    "Update": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "a"}},
                        "UpdateExpression": "SET #a = :v",
                        "ExpressionAttributeNames": {"#a": "a"},
                        "ExpressionAttributeValues": {":v": {"BS": [BLOB]}},
                    }
                },
            ],
            "ClientRequestToken": "token",
        },
    ),
    (
        "dynamodb",
        "BatchWriteItem",
        {
            "RequestItems": {
                "t": [{"PutRequest": {"Item": EVERY_VALUE}}, {"DeleteRequest": {"Key": {"pk": {"S": "a"}}}}]
            }
        },
    ),
    (
        "dynamodb",
        "Query",
        {
            "TableName": "t",
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "G#1"}},
            "ExclusiveStartKey": {"pk": {"S": "G#1"}, "sk": {"B": BLOB}},
            "Limit": 500,
            "ConsistentRead": False,
            "ScanIndexForward": True,
            "Unknown": {"kept": "no"},  # not in the shape: dropped by both
            "FilterExpression": None,  # null: dropped by both
        },
    ),
    (
        "sqs",
        "SendMessageBatch",
        {
            "QueueUrl": "http://q",
            "Entries": [
                {
                    "Id": "1",
                    "MessageBody": "{}",
                    "DelaySeconds": 3,
                    "MessageAttributes": {
                        "bin": {"DataType": "Binary", "BinaryValue": BLOB},
                        "txt": {"DataType": "String", "StringValue": "v"},
                    },
                }
            ],
        },
    ),
    (
        "events",
        "PutEvents",
        {
            "Entries": [
                {"Source": "s", "DetailType": "d", "Detail": "{}", "Time": 1764400000, "Resources": ["r"]}
            ]
        },
    ),
    (
        "application-autoscaling",
        "PutScalingPolicy",
        {
            "PolicyName": "p",
            "ServiceNamespace": "dynamodb",
            "ResourceId": "table/t",
            "ScalableDimension": "dynamodb:table:ReadCapacityUnits",
            "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 70, "ScaleInCooldown": 60},
        },
    ),
    ("stepfunctions", "StartExecution", {"stateMachineArn": "arn", "name": "n", "input": '{"a": [1, null]}'}),
]


def parse(service: str, operation: str, body: dict[str, Any], fast: bool) -> Any:
    model = get_session().get_service_model(service).operation_model(operation)
    parser = JSONParser(model)
    raw = json.dumps(body).encode()
    if fast:
        assert "_geoexport_plan" not in vars(model.input_shape)
        parsed = parser.parse(
            {"method": "POST", "values": {}, "headers": {}, "body": raw, "url_path": "/", "url_params": {}}
        )
        assert "_geoexport_plan" in vars(model.input_shape)  # the compiled parse ran, not moto's walk
        return parsed
        return parser.parse(
            {"method": "POST", "values": {}, "headers": {}, "body": raw, "url_path": "/", "url_params": {}}
        )
    return parser._parse_shape(model.input_shape, parser._parse_body_as_json(raw))  # moto's own walk


@pytest.mark.parametrize(("service", "operation", "body"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_the_compiled_parse_gives_what_motos_walk_gives(
    service: str, operation: str, body: dict[str, Any]
) -> None:
    fast_json_requests()
    expected = parse(service, operation, body, fast=False)
    got = parse(service, operation, body, fast=True)
    assert got == expected
    assert json.dumps(got, default=repr, sort_keys=True) == json.dumps(expected, default=repr, sort_keys=True)


def test_blobs_timestamps_and_doubles_are_converted_not_passed_through() -> None:
    fast_json_requests()
    item = parse("dynamodb", "PutItem", {"TableName": "t", "Item": EVERY_VALUE}, fast=True)["Item"]
    assert item["b"]["B"] == b"\x00\x01binary\xff" and item["bs"]["BS"] == [b"\x00\x01binary\xff"] * 2
    assert item["m"]["M"]["inner"]["L"][1]["M"]["deep"]["B"] == b"\x00\x01binary\xff"
    entry = parse("events", "PutEvents", CASES[5][2], fast=True)["Entries"][0]
    assert entry["Time"].year == 2025
    policy = parse("application-autoscaling", "PutScalingPolicy", CASES[6][2], fast=True)
    assert isinstance(policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"], float)
