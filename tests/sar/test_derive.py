"""scripts/sar.py derive: the SAR edition of template.yaml, checked against the real template."""

from __future__ import annotations

import copy
import gzip
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore
import pytest
from cfnlint.api import lint
from samcli.yamlhelper import yaml_dump, yaml_parse
from testkit import transform

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("WriterFunction", "ReaderFunction", "JanitorFunction")
FN = ("Fn::GetAtt", "Fn::Sub", "Fn::If", "Fn::Select", "Fn::Join", "Fn::Split", "Fn::Equals", "Fn::Not")
FILE_SYSTEM_ARN = "arn:aws:s3files:us-east-1:123456789012:file-system/fs-0123456789abcdef0"
ACCESS_POINT_ARN = f"{FILE_SYSTEM_ARN}/access-point/fsap-0123456789abcdef0"
PARAMETER_VALUES = {
    "AccessPointArn": ACCESS_POINT_ARN,
    "FileSystemArn": FILE_SYSTEM_ARN,
    "BucketName": "my-data-bucket",
    "SubnetIds": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "SecurityGroupIds": ["sg-0123456789abcdef0"],
}


def _names_referenced(node: Any) -> set[str]:
    """Logical ids named by Ref, Fn::GetAtt, Fn::Sub variables and DependsOn anywhere in node."""
    names: set[str] = set()
    if isinstance(node, list):
        for item in node:
            names |= _names_referenced(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                names.add(value)
            elif key == "Fn::GetAtt":
                names.add(value.split(".")[0] if isinstance(value, str) else value[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                names |= set(re.findall(r"\$\{([A-Za-z0-9]+)[.}]", text))
            elif key == "DependsOn":
                names |= {value} if isinstance(value, str) else set(value)
            names |= _names_referenced(value)
    return names


def _differences(a: Any, b: Any, path: str = "") -> list[tuple[str, Any]]:
    """(path, value in a) of every place where a and b differ, down to intrinsic function calls."""
    intrinsic = isinstance(a, dict) and len(a) == 1 and next(iter(a)) in ("Ref", "Condition", *FN)
    if isinstance(a, dict) and isinstance(b, dict) and not intrinsic and a.keys() == b.keys():
        return [d for key in a for d in _differences(a[key], b[key], f"{path}.{key}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [(path, a)]


def _transform(template: dict[str, Any]) -> dict[str, Any]:
    return transform(template, PARAMETER_VALUES)


def test_every_resource_type_is_on_the_allowlist(sar: ModuleType, derived: dict, packaged: dict) -> None:
    allowed = sar.load_allowlist()
    assert "AWS::S3Files::AccessPoint" not in allowed  # the premise of the whole SAR edition
    sam_types = {r["Type"] for r in derived["Resources"].values()}
    cfn_types = {r["Type"] for r in _transform(packaged)["Resources"].values()}
    assert sam_types <= allowed, sam_types - allowed
    assert cfn_types <= allowed, cfn_types - allowed
    assert "AWS::Events::Rule" in cfn_types  # the janitor schedule survived the transform


def test_allowlist_file_cites_its_source_and_lists_one_type_a_line() -> None:
    text = (ROOT / "sar" / "allowed-resource-types.txt").read_text(encoding="utf-8")
    assert "docs.aws.amazon.com/serverlessrepo/latest/devguide/list-supported-resources.html" in text
    types = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert types and all(re.fullmatch(r"AWS::[A-Za-z0-9]+::[A-Za-z0-9]+", t) for t in types)
    assert len(types) == len(set(types))


def test_new_parameters_take_the_existing_resources(derived: dict) -> None:
    parameters = derived["Parameters"]
    assert parameters["SubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert parameters["SecurityGroupIds"]["Type"] == "List<AWS::EC2::SecurityGroup::Id>"
    for name in ("AccessPointArn", "FileSystemArn", "BucketName"):
        assert parameters[name]["Type"] == "String"
        assert "Default" not in parameters[name]  # the stack cannot work without them
    kept = ("LocalMountPath", "DirectS3Read", "ReservedConcurrency", "LogRetentionDays", "DocumentPrefix")
    assert set(kept) <= set(parameters)
    for name in ("VpcId", "VpcCidr", "PosixUid", "PosixGid", "S3PrefixListId"):
        assert name not in parameters  # they only configured dropped resources
    assert "Rules" not in derived and "CreateVpc" not in derived.get("Conditions", {})


def test_arn_patterns_agree_with_the_s3files_service_model(derived: dict) -> None:
    model_file = Path(botocore.__file__).parent / "data" / "s3files"
    model = json.loads(gzip.decompress(next(model_file.glob("*/service-2.json.gz")).read_bytes()))
    service_pattern = {name: model["shapes"][name]["pattern"] for name in ("AccessPointArn", "FileSystemArn")}
    for name, value, other in (
        ("AccessPointArn", ACCESS_POINT_ARN, FILE_SYSTEM_ARN),
        ("FileSystemArn", FILE_SYSTEM_ARN, ACCESS_POINT_ARN),
    ):
        pattern = derived["Parameters"][name]["AllowedPattern"]
        assert re.fullmatch(service_pattern[name], value)
        assert re.fullmatch(pattern, value)
        assert re.fullmatch(pattern, value.replace(":aws:", ":aws-us-gov:"))
        assert not re.fullmatch(pattern, other)
    efs = "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-0123456789abcdef0"
    assert not re.fullmatch(derived["Parameters"]["AccessPointArn"]["AllowedPattern"], efs)


def test_no_reference_to_a_dropped_resource_remains(root_template: dict, derived: dict) -> None:
    dropped = set(root_template["Resources"]) - set(derived["Resources"])
    assert {"FileSystem", "AccessPoint", "MountTargetA", "DataBucket", "FunctionSecurityGroup"} <= dropped
    assert not _names_referenced(derived) & dropped
    declared = set(derived["Parameters"]) | set(derived["Resources"])
    assert {n for n in _names_referenced(derived) if not n.startswith("AWS::")} <= declared


def test_the_application_and_its_monitoring_are_kept(root_template: dict, derived: dict) -> None:
    resources = derived["Resources"]
    for name in (*FUNCTIONS, "SharedLayer", "DeadLetterQueue", "WriterLogGroup", "JanitorMountErrorsFilter"):
        assert resources[name]["Type"] == root_template["Resources"][name]["Type"]
    assert (
        resources["JanitorFunction"]["Properties"]["Events"]
        == (root_template["Resources"]["JanitorFunction"]["Properties"]["Events"])
    )
    kept_alarms = {n for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    root_alarms = {n for n, r in root_template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    # Only alarms on the file system itself go: it belongs to whoever created it.
    assert root_alarms - kept_alarms == {
        n for n in root_alarms if "FileSystem" in _names_referenced(root_template["Resources"][n])
    }
    assert {f"{f}Function{s}" for f in ("Writer", "Reader", "Janitor") for s in ("Name", "Arn")} <= set(
        derived["Outputs"]
    )
    dropped = set(root_template["Resources"]) - set(resources)
    for path, value in _differences(root_template["Globals"], derived["Globals"]):
        assert _names_referenced(value) & dropped, f"Globals{path} differs but names no dropped resource"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_functions_differ_from_template_yaml_only_in_rewritten_references(
    root_template: dict, derived: dict, derived_path: Path, function: str
) -> None:
    dropped = set(root_template["Resources"]) - set(derived["Resources"])
    root = root_template["Resources"][function]["Properties"]
    mine = derived["Resources"][function]["Properties"]
    code = derived_path.parent / mine["CodeUri"]
    assert code.resolve() == (ROOT / root["CodeUri"]).resolve()
    differences = _differences(root, {**mine, "CodeUri": root["CodeUri"]})
    assert differences, "the SAR edition must rewrite the mount, network and policy references"
    for path, value in differences:
        assert _names_referenced(value) & dropped, f"{function}{path} differs but names no dropped resource"


def test_a_change_in_template_yaml_shows_up_in_the_derived_template(sar: ModuleType, tmp_path: Path) -> None:
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    template = yaml_parse(text)
    template["Resources"]["WriterFunction"]["Properties"]["MemorySize"] = 1769
    template["Globals"]["Function"]["Timeout"] = 42
    source = tmp_path / "template.yaml"
    source.write_text(yaml_dump(template), encoding="utf-8")
    derived = sar.derive_file(source, tmp_path / "out" / "template.yaml")
    assert derived["Resources"]["WriterFunction"]["Properties"]["MemorySize"] == 1769
    assert derived["Globals"]["Function"]["Timeout"] == 42
    assert "MemorySize" not in yaml_parse(text)["Resources"]["WriterFunction"]["Properties"]


def test_local_paths_still_point_at_the_sources(derived: dict, derived_path: Path) -> None:
    metadata = derived["Metadata"]["AWS::ServerlessRepo::Application"]
    assert (derived_path.parent / metadata["LicenseUrl"]).resolve() == ROOT / "LICENSE"
    assert (derived_path.parent / metadata["ReadmeUrl"]).resolve() == ROOT / "README.md"
    layer = derived["Resources"]["SharedLayer"]["Properties"]["ContentUri"]
    assert (derived_path.parent / layer).resolve() == ROOT / "layers" / "shared"


def test_cfn_lint_is_clean_on_the_sam_and_the_transformed_template(derived: dict, packaged: dict) -> None:
    assert [str(m) for m in lint(yaml_dump(derived), regions=["us-east-1"])] == []
    transformed = _transform(packaged)
    assert [str(m) for m in lint(json.dumps(transformed), regions=["us-east-1"])] == []
    writer = transformed["Resources"]["WriterFunction"]["Properties"]
    assert writer["FileSystemConfigs"][0]["Arn"] == {"Ref": "AccessPointArn"}
    assert writer["VpcConfig"] == {
        "SubnetIds": {"Ref": "SubnetIds"},
        "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
    }


def test_a_type_off_the_allowlist_is_rejected_with_a_clear_message(sar: ModuleType, derived: dict) -> None:
    template = copy.deepcopy(derived)
    template["Resources"]["AccessPoint"] = {"Type": "AWS::S3Files::AccessPoint", "Properties": {}}
    with pytest.raises(sar.SarError, match=r"AccessPoint \(AWS::S3Files::AccessPoint\).*parameter"):
        sar.check_resource_types(template, sar.load_allowlist())
    sar.check_resource_types(derived, sar.load_allowlist())


def test_derive_refuses_to_drop_a_function(sar: ModuleType, root_template: dict) -> None:
    allowed = sar.load_allowlist() - {"AWS::Serverless::Function"}
    with pytest.raises(sar.SarError, match="would lose JanitorFunction, ReaderFunction, WriterFunction"):
        sar.derive(root_template, allowed)


def test_a_reference_without_a_rewrite_fails_loudly(sar: ModuleType, root_template: dict) -> None:
    template = copy.deepcopy(root_template)
    variables = template["Resources"]["WriterFunction"]["Properties"]["Environment"]["Variables"]
    variables["FILE_SYSTEM_ID"] = {"Fn::GetAtt": ["FileSystem", "FileSystemId"]}
    variables["BUCKET_HOST"] = {"Fn::Sub": "${DataBucket.RegionalDomainName}"}
    with pytest.raises(sar.SarError) as raised:
        sar.derive(template, sar.load_allowlist())
    message = str(raised.value)
    assert "Variables.FILE_SYSTEM_ID: Fn::GetAtt FileSystem.FileSystemId has no entry in REWRITES" in message
    assert "${DataBucket.RegionalDomainName}" in message


def test_the_cli_writes_the_derived_template(sar: ModuleType, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "sar.yaml"
    assert sar.main(["derive", "--out", str(out)]) == 0
    assert "WriterFunction" in yaml_parse(out.read_text(encoding="utf-8"))["Resources"]
    assert str(out) in capsys.readouterr().out


def test_no_permission_pattern_that_sar_blocks(packaged: dict) -> None:
    roles = [r for r in _transform(packaged)["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) == len(FUNCTIONS)
    text = json.dumps(roles)
    assert "AWSLambda_FullAccess" not in text
    statements = [s for role in roles for p in role["Properties"].get("Policies", []) for s in _statements(p)]
    assert statements
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        iam = [a for a in actions if a.startswith("iam:") or a == "*"]
        assert not (iam and statement.get("Resource") == "*"), statement


def _statements(policy: dict) -> list[dict]:
    """The statements of an inline policy, each Fn::If resolved to its true branch."""
    found = []
    for statement in policy["PolicyDocument"]["Statement"]:
        found.append(statement["Fn::If"][1] if "Fn::If" in statement else statement)
    return found


def test_a_list_parameter_cannot_replace_part_of_a_list(sar: ModuleType, root_template: dict) -> None:
    template = copy.deepcopy(root_template)
    vpc = template["Globals"]["Function"]["VpcConfig"]
    vpc["SecurityGroupIds"].append("sg-0123456789abcdef0")
    with pytest.raises(sar.SarError, match=r"Globals\.Function\.VpcConfig\.SecurityGroupIds: .*whole list"):
        sar.derive(template, sar.load_allowlist())


def test_direct_reads_are_scoped_to_the_given_bucket_and_root(derived: dict) -> None:
    statements = derived["Resources"]["ReaderFunction"]["Properties"]["Policies"][0]["Statement"]
    direct = [s["Fn::If"][1] for s in statements if "Fn::If" in s and s["Fn::If"][0] == "HasDirectReads"]
    assert [s["Resource"] for s in direct] == [
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}${AccessPointRootPath}/*"}
    ]
