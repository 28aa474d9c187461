"""Parameters, metadata, globals and the layer of the SAM template as written."""

from __future__ import annotations

import re
from typing import Any

import pytest
from template_model import allowed

CONTRACT_PARAMETERS = {
    "VpcId",
    "SubnetIds",
    "VpcCidr",
    "PosixUid",
    "PosixGid",
    "AccessPointRootPath",
    "LocalMountPath",
    "DirectS3Read",
    "ReservedConcurrency",
    "LogRetentionDays",
    "KmsKeyArn",
    "AlarmTopicArn",
    "DocumentPrefix",
}


def _no_intrinsics(node: Any) -> bool:
    if isinstance(node, dict):
        return not any(k == "Ref" or k.startswith("Fn::") for k in node) and all(
            map(_no_intrinsics, node.values())
        )
    if isinstance(node, list):
        return all(map(_no_intrinsics, node))
    return True


def test_contract_parameters_are_declared_with_defaults(sam_template: dict[str, Any]) -> None:
    parameters = sam_template["Parameters"]
    assert parameters.keys() >= CONTRACT_PARAMETERS
    for name, spec in parameters.items():
        assert spec.get("Description"), f"{name} has no Description"
        assert "Default" in spec, f"{name} has no default: the template must deploy without overrides"
        assert allowed(spec, str(spec["Default"])), f"{name}: its default violates its own constraints"


def test_contract_defaults(sam_template: dict[str, Any]) -> None:
    defaults = {name: str(spec["Default"]) for name, spec in sam_template["Parameters"].items()}
    expected = {
        "VpcId": "",
        "PosixUid": "1000",
        "PosixGid": "1000",
        "AccessPointRootPath": "/lambda",
        "LocalMountPath": "/mnt/s3data",
        "DirectS3Read": "AUTO",
        "KmsKeyArn": "",
        "AlarmTopicArn": "",
        "DocumentPrefix": "documents",
    }
    assert {k: defaults[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("parameter", "value", "accepted"),
    [
        ("AccessPointRootPath", "/lambda", True),
        ("AccessPointRootPath", "/a/b/c/d", True),
        ("AccessPointRootPath", "/team-1/data_v2", True),
        ("AccessPointRootPath", "lambda", False),
        ("AccessPointRootPath", "/", False),
        ("AccessPointRootPath", "/a/b/c/d/e", False),
        ("AccessPointRootPath", "/.hidden", False),
        ("AccessPointRootPath", "/a/.b", False),
        ("AccessPointRootPath", "/a//b", False),
        ("AccessPointRootPath", "/lambda/", False),
        ("LocalMountPath", "/mnt/s3data", True),
        ("LocalMountPath", "/mnt/s3data/sub", False),
        ("LocalMountPath", "/tmp/s3data", False),
        ("PosixUid", "1000", True),
        ("PosixUid", "0", False),
        ("PosixUid", "-1", False),
        ("PosixGid", "65534", True),
        ("PosixGid", "abc", False),
        ("DirectS3Read", "DISABLED", True),
        ("DirectS3Read", "disabled", False),
        ("VpcId", "vpc-0123456789abcdef0", True),
        ("VpcId", "subnet-0123456789abcdef0", False),
        ("KmsKeyArn", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", True),
        ("KmsKeyArn", "alias/my-key", False),
        ("AlarmTopicArn", "arn:aws:sns:eu-west-1:123456789012:ops", True),
        ("AlarmTopicArn", "ops", False),
        ("ReservedConcurrency", "0", False),
        ("LogRetentionDays", "14", True),
        ("LogRetentionDays", "10", False),
        ("DocumentPrefix", "documents", True),
        ("DocumentPrefix", ".staging", False),
        ("DocumentPrefix", "a/b", False),
    ],
)
def test_parameter_constraints(
    sam_template: dict[str, Any], parameter: str, value: str, accepted: bool
) -> None:
    assert allowed(sam_template["Parameters"][parameter], value) is accepted


def test_interface_groups_every_parameter_once(sam_template: dict[str, Any]) -> None:
    interface = sam_template["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [p for group in interface["ParameterGroups"] for p in group["Parameters"]]
    assert sorted(grouped) == sorted(sam_template["Parameters"])
    assert set(interface["ParameterLabels"]) == set(sam_template["Parameters"])


def test_serverless_repo_metadata(sam_template: dict[str, Any]) -> None:
    app = sam_template["Metadata"]["AWS::ServerlessRepo::Application"]
    assert app["Name"] == "s3files-lambda-atomic-commit"
    assert {
        "Description",
        "Author",
        "SpdxLicenseId",
        "LicenseUrl",
        "ReadmeUrl",
        "SourceCodeUrl",
    } <= app.keys()
    assert app["SpdxLicenseId"] == "MIT-0"
    assert re.fullmatch(r"\d+\.\d+\.\d+", app["SemanticVersion"])
    assert 1 <= len(app["Labels"]) <= 10
    assert _no_intrinsics(app), "SAR metadata must not contain intrinsic functions"


def test_function_globals(sam_template: dict[str, Any]) -> None:
    function = sam_template["Globals"]["Function"]
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["x86_64"]
    assert function["Handler"] == "app.handler"
    assert function["Layers"] == [{"Ref": "SharedLayer"}]


@pytest.mark.parametrize("name", ["writer", "reader", "janitor"])
def test_function_code_location(sam_template: dict[str, Any], name: str) -> None:
    function = sam_template["Resources"][f"{name.capitalize()}Function"]
    assert function["Type"] == "AWS::Serverless::Function"
    assert function["Properties"]["CodeUri"] == f"functions/{name}/"


def test_shared_layer(sam_template: dict[str, Any]) -> None:
    layer = sam_template["Resources"]["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["ContentUri"] == "layers/shared"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["RetentionPolicy"] == "Delete"
