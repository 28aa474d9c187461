"""functions/template.yaml is publishable as it is: resource types SAR accepts, the five links to
storage and network as parameters, no permission pattern SAR blocks."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import botocore
import pytest
from samcli.yamlhelper import yaml_parse
from testkit import FUNCTION_IDS, REPO, transform

ALLOWLIST = REPO / "sar" / "allowed-resource-types.txt"
FILE_SYSTEM_ARN = "arn:aws:s3files:us-east-1:123456789012:file-system/fs-0123456789abcdef0"
ACCESS_POINT_ARN = f"{FILE_SYSTEM_ARN}/access-point/fsap-0123456789abcdef0"
# What a SAR user passes: existing resources, lists as CloudFormation takes them.
PARAMETER_VALUES = {
    "AccessPointArn": ACCESS_POINT_ARN,
    "FileSystemArn": FILE_SYSTEM_ARN,
    "BucketName": "my-data-bucket",
    "SubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
    "SecurityGroupIds": "sg-0123456789abcdef0",
}


def load_allowlist() -> set[str]:
    """Resource types in the allowlist file: one a line, '#' starts a comment."""
    lines = (line.split("#", 1)[0].strip() for line in ALLOWLIST.read_text(encoding="utf-8").splitlines())
    return {line for line in lines if line}


@pytest.fixture(scope="module")
def transformed(functions_template: dict[str, Any]) -> dict[str, Any]:
    return transform(functions_template, PARAMETER_VALUES)


def test_every_resource_type_is_on_the_allowlist(
    functions_template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    allowed = load_allowlist()
    sam_types = {r["Type"] for r in functions_template["Resources"].values()}
    cfn_types = {r["Type"] for r in transformed["Resources"].values()}
    assert sam_types <= allowed, sam_types - allowed
    assert cfn_types <= allowed, cfn_types - allowed
    assert "AWS::Events::Rule" in cfn_types  # the janitor schedule survived the transform
    # The premise of the split: what template.yaml creates itself SAR would refuse.
    root = yaml_parse((REPO / "template.yaml").read_text(encoding="utf-8"))
    assert {"AWS::S3Files::AccessPoint", "AWS::S3Files::MountTarget"} <= (
        {r["Type"] for r in root["Resources"].values()} - allowed
    )


def test_allowlist_file_cites_its_source_and_lists_one_type_a_line() -> None:
    text = ALLOWLIST.read_text(encoding="utf-8")
    assert "docs.aws.amazon.com/serverlessrepo/latest/devguide/list-supported-resources.html" in text
    types = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert types and all(re.fullmatch(r"AWS::[A-Za-z0-9]+::[A-Za-z0-9]+", t) for t in types)
    assert len(types) == len(set(types))


def test_arn_patterns_agree_with_the_s3files_service_model(functions_template: dict[str, Any]) -> None:
    model_file = Path(botocore.__file__).parent / "data" / "s3files"
    model = json.loads(gzip.decompress(next(model_file.glob("*/service-2.json.gz")).read_bytes()))
    service_pattern = {name: model["shapes"][name]["pattern"] for name in ("AccessPointArn", "FileSystemArn")}
    parameters = functions_template["Parameters"]
    for name, value, other in (
        ("AccessPointArn", ACCESS_POINT_ARN, FILE_SYSTEM_ARN),
        ("FileSystemArn", FILE_SYSTEM_ARN, ACCESS_POINT_ARN),
    ):
        pattern = parameters[name]["AllowedPattern"]
        assert re.fullmatch(service_pattern[name], value)
        assert re.fullmatch(pattern, value)
        assert re.fullmatch(pattern, value.replace(":aws:", ":aws-us-gov:"))
        assert not re.fullmatch(pattern, other)
    efs = "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-0123456789abcdef0"
    assert not re.fullmatch(parameters["AccessPointArn"]["AllowedPattern"], efs)
    assert re.fullmatch(parameters["BucketName"]["AllowedPattern"], PARAMETER_VALUES["BucketName"])


def test_deployed_alone_the_functions_use_the_given_resources(transformed: dict[str, Any]) -> None:
    for function in FUNCTION_IDS:
        properties = transformed["Resources"][function]["Properties"]
        assert properties["FileSystemConfigs"][0]["Arn"] == {"Ref": "AccessPointArn"}
        assert properties["VpcConfig"] == {
            "SubnetIds": {"Ref": "SubnetIds"},
            "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
        }
    assert not any("DependsOn" in r for r in transformed["Resources"].values())  # nothing to wait for


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements of an inline policy, each Fn::If resolved to its true branch."""
    return [s["Fn::If"][1] if "Fn::If" in s else s for s in policy["PolicyDocument"]["Statement"]]


def test_no_permission_pattern_that_sar_blocks(transformed: dict[str, Any]) -> None:
    roles = [r for r in transformed["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) == len(FUNCTION_IDS)
    assert "AWSLambda_FullAccess" not in json.dumps(roles)
    statements = [s for role in roles for p in role["Properties"].get("Policies", []) for s in _statements(p)]
    assert statements
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        iam = [a for a in actions if a.startswith("iam:") or a == "*"]
        assert not (iam and statement.get("Resource") == "*"), statement
