"""Parameters, metadata, globals and the layer of both SAM templates as written, and how
template.yaml hands its settings to the functions template."""

from __future__ import annotations

import re
from typing import Any

import pytest
from template_model import FUNCTIONS_TEMPLATE, LINKS, NESTED_ID, REPO, allowed

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
CONSTRAINTS = ("Type", "Default", "AllowedPattern", "AllowedValues", "MinValue", "MaxValue")


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
        "ReservedConcurrency": "0",
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
        ("ReservedConcurrency", "0", True),
        ("ReservedConcurrency", "1", True),
        ("ReservedConcurrency", "1000", True),
        ("ReservedConcurrency", "1001", False),
        ("ReservedConcurrency", "00", False),
        ("ReservedConcurrency", "0.0", False),
        ("ReservedConcurrency", "20.5", False),
        ("ReservedConcurrency", "-1", False),
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


@pytest.mark.parametrize("which", ["root", "functions"])
def test_interface_groups_every_parameter_once(
    sam_template: dict[str, Any], functions_template: dict[str, Any], which: str
) -> None:
    template = sam_template if which == "root" else functions_template
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [p for group in interface["ParameterGroups"] for p in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])
    assert set(interface["ParameterLabels"]) == set(template["Parameters"])


def test_functions_parameters_link_or_have_defaults(functions_template: dict[str, Any]) -> None:
    parameters = functions_template["Parameters"]
    for name, spec in parameters.items():
        assert spec.get("Description"), f"{name} has no Description"
        if name in LINKS:
            assert "Default" not in spec, f"{name}: the functions cannot work without it"
        else:
            assert allowed(spec, str(spec["Default"])), f"{name}: its default violates its own constraints"
    assert parameters.keys() >= LINKS
    assert parameters["SubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert parameters["SecurityGroupIds"]["Type"] == "List<AWS::EC2::SecurityGroup::Id>"


def test_the_root_passes_every_functions_parameter(
    sam_template: dict[str, Any], functions_template: dict[str, Any]
) -> None:
    # A setting the root forgot would silently take the functions template's default.
    nested = sam_template["Resources"][NESTED_ID]
    assert nested["Type"] == "AWS::Serverless::Application"
    assert nested["Properties"]["Location"] == "functions/template.yaml"
    passed = nested["Properties"]["Parameters"]
    assert passed.keys() == functions_template["Parameters"].keys()
    # Except DirectS3Read, off where no prefix list allows HTTPS to S3 (test_template_checks proves how).
    assert passed["DirectS3Read"] == {"Fn::If": ["HasDirectReads", {"Ref": "DirectS3Read"}, "DISABLED"]}
    for name in passed.keys() - LINKS - {"DirectS3Read"}:
        assert passed[name] == {"Ref": name}, f"{name}: pass the root's own parameter through"


def test_settings_have_the_same_constraints_in_both_templates(
    sam_template: dict[str, Any], functions_template: dict[str, Any]
) -> None:
    # The root validates what it passes through exactly as the functions stack will.
    settings = functions_template["Parameters"].keys() - LINKS
    assert settings >= {"LocalMountPath", "DirectS3Read", "DocumentPrefix", "ReservedConcurrency"}
    for name in settings:
        root, functions = sam_template["Parameters"][name], functions_template["Parameters"][name]
        assert {k: root.get(k) for k in CONSTRAINTS} == {k: functions.get(k) for k in CONSTRAINTS}, name


def test_serverless_repo_metadata(sam_template: dict[str, Any], functions_template: dict[str, Any]) -> None:
    # The functions template is the application published to SAR; the root is not publishable.
    assert "AWS::ServerlessRepo::Application" not in sam_template["Metadata"]
    app = functions_template["Metadata"]["AWS::ServerlessRepo::Application"]
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
    assert (FUNCTIONS_TEMPLATE.parent / app["LicenseUrl"]).resolve() == REPO / "LICENSE"
    assert (FUNCTIONS_TEMPLATE.parent / app["ReadmeUrl"]).resolve() == REPO / "README.md"


def test_function_globals(functions_template: dict[str, Any]) -> None:
    function = functions_template["Globals"]["Function"]
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["x86_64"]
    assert function["Handler"] == "app.handler"
    assert function["Layers"] == [{"Ref": "SharedLayer"}]


@pytest.mark.parametrize("name", ["writer", "reader", "janitor"])
def test_function_code_location(functions_template: dict[str, Any], name: str) -> None:
    function = functions_template["Resources"][f"{name.capitalize()}Function"]
    assert function["Type"] == "AWS::Serverless::Function"
    assert function["Properties"]["CodeUri"] == f"{name}/"
    assert (FUNCTIONS_TEMPLATE.parent / name / "app.py").is_file()


def test_shared_layer(functions_template: dict[str, Any]) -> None:
    layer = functions_template["Resources"]["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["ContentUri"] == "../layers/shared"
    assert (FUNCTIONS_TEMPLATE.parent / "../layers/shared").resolve() == REPO / "layers" / "shared"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["RetentionPolicy"] == "Delete"
