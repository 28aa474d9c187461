"""Parameters, metadata, globals and the layer of both SAM templates as written, and how
template.yaml hands its settings to the functions template."""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Any

import pytest
import template_checks as tc
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from template_functions import read_functions
from template_model import FUNCTIONS_TEMPLATE, LINKS, NESTED_ID, REPO, allowed
from testkit import FUNCTION_IDS, load_module

if TYPE_CHECKING:
    from pathlib import Path

CONTRACT_PARAMETERS = {
    "VpcId",
    "SubnetIds",
    "VpcCidr",
    "PosixUid",
    "PosixGid",
    "PosixSecondaryGids",
    "AccessPointRootPath",
    "LocalMountPath",
    "DirectS3Read",
    "ReservedConcurrency",
    "LogRetentionDays",
    "KmsKeyArn",
    "AlarmTopicArn",
    "DocumentPrefix",
}
CONSTRAINTS = (
    "Type",
    "Default",
    "AllowedPattern",
    "AllowedValues",
    "MinValue",
    "MaxValue",
    "MinLength",
    "MaxLength",
)
MAX_POSIX_ID = 2**32 - 1


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
        "PosixSecondaryGids": "",
        "AccessPointRootPath": "/lambda",
        "LocalMountPath": "/mnt/s3data",
        "DirectS3Read": "AUTO",
        "KmsKeyArn": "",
        "AlarmTopicArn": "",
        "DocumentPrefix": "documents",
        "ReservedConcurrency": "0",
        "Architecture": "x86_64",
        "Tracing": "PassThrough",
        "UploadPrefix": "uploads/",
        "ExtractPrefix": "extracted/",
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
        ("AccessPointRootPath", "/" + "/".join(["a" * 24] * 4), True),  # 100 characters
        ("AccessPointRootPath", "/" + "/".join(["a" * 24] * 3 + ["a" * 25]), False),
        ("LocalMountPath", "/mnt/s3data", True),
        ("LocalMountPath", "/mnt/s3data/sub", False),
        ("LocalMountPath", "/tmp/s3data", False),
        ("PosixUid", "1000", True),
        ("PosixUid", "0", False),
        ("PosixUid", "-1", False),
        ("PosixUid", "1", True),
        ("PosixUid", "4294967295", True),
        ("PosixUid", "4294967296", False),
        ("PosixUid", "01000", False),
        ("PosixUid", "1000.5", False),
        ("PosixSecondaryGids", "", True),
        ("PosixSecondaryGids", "1001", True),
        ("PosixSecondaryGids", "1001,4294967295", True),
        ("PosixSecondaryGids", ",".join(str(g) for g in range(1001, 1017)), True),  # 16
        ("PosixSecondaryGids", ",".join(str(g) for g in range(1001, 1018)), False),  # 17
        ("PosixSecondaryGids", "0", False),
        ("PosixSecondaryGids", "1001,4294967296", False),
        ("PosixSecondaryGids", "1001, 1002", False),
        ("PosixSecondaryGids", "1001,", False),
        ("PosixSecondaryGids", ",1001", False),
        ("PosixSecondaryGids", "1001,,1002", False),
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
        ("VpcCidr", "10.42.0.0/16", True),
        ("VpcCidr", "172.31.252.0/22", True),
        ("VpcCidr", "192.168.0.0/16", True),
        ("VpcCidr", "172.32.0.0/16", False),
        ("VpcCidr", "100.64.0.0/16", False),
        ("VpcCidr", "10.0.0.0/8", False),
        ("Architecture", "arm64", True),
        ("Architecture", "aarch64", False),
        ("Tracing", "Active", True),
        ("Tracing", "Disabled", False),
        ("UploadPrefix", "uploads/", True),
        ("UploadPrefix", "in/zips/", True),
        ("UploadPrefix", "a/b/c/d/", True),
        ("UploadPrefix", "a/b/c/d/e/", False),
        ("UploadPrefix", "uploads", False),
        ("UploadPrefix", "/uploads/", False),
        ("UploadPrefix", ".hidden/", False),
        ("UploadPrefix", "a//b/", False),
        ("ExtractPrefix", "extracted/", True),
        ("ExtractPrefix", "../x/", False),
        ("ExtractPrefix", "x.zip/", False),
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
    # Except DirectS3Read, off where no prefix list allows HTTPS to S3, and naming the HTTPS egress rule
    # where there is one so that the functions wait for it (test_template_checks proves both).
    given = {"Fn::Select": [0, [{"Ref": "DirectS3Read"}, {"Ref": "FunctionEgressToS3PrefixList"}]]}
    assert passed["DirectS3Read"] == {"Fn::If": ["HasDirectReads", given, "DISABLED"]}
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
    assert {"Description", "SpdxLicenseId", "LicenseUrl", "ReadmeUrl", "SemanticVersion"} <= app.keys()
    # The publisher's Author and URLs come from sar/publisher.toml at publish time (tests/sar).
    assert not {"Author", "HomePageUrl", "SourceCodeUrl"} & app.keys()
    assert app["SpdxLicenseId"] == "MIT-0"
    assert re.fullmatch(r"\d+\.\d+\.\d+", app["SemanticVersion"])
    assert 1 <= len(app["Labels"]) <= 10
    assert _no_intrinsics(app), "SAR metadata must not contain intrinsic functions"
    assert (FUNCTIONS_TEMPLATE.parent / app["LicenseUrl"]).resolve() == REPO / "LICENSE"
    assert (FUNCTIONS_TEMPLATE.parent / app["ReadmeUrl"]).resolve() == REPO / "README.md"


def test_function_globals(functions_template: dict[str, Any]) -> None:
    function = functions_template["Globals"]["Function"]
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == [{"Ref": "Architecture"}]
    assert function["Tracing"] == {"Ref": "Tracing"}
    assert function["Handler"] == "app.handler"
    assert function["Layers"] == [{"Ref": "SharedLayer"}]


def test_every_function_is_checked_and_invokable_locally(functions_template: dict[str, Any]) -> None:
    # The template is the one list: the template, build and SAR checks (testkit.FUNCTION_IDS),
    # `make invoke` and the sam local tier (local_invoke.LOGICAL_IDS) all read it.
    functions = {
        rid for rid, r in functions_template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    }
    assert set(FUNCTION_IDS) == functions
    local_invoke = load_module("local_invoke", REPO / "scripts" / "local_invoke.py")
    assert set(local_invoke.LOGICAL_IDS.values()) == functions
    assert all(name == rid.removesuffix("Function").lower() for name, rid in local_invoke.LOGICAL_IDS.items())
    read_only = {rid for rid, actions in tc.CLIENT_ACTIONS.items() if "s3files:ClientWrite" not in actions}
    assert read_only == {"ReaderFunction"}
    assert set(tc.SERVING) == functions - {"JanitorFunction"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("CodeUri: reader/", "CodeUri: Reader/"), "ReaderFunction: CodeUri 'Reader/' does not match"),
        (("  ReaderFunction:", "  ReadFunction:"), "ReadFunction: CodeUri 'reader/' does not match"),
        (("MountAccess: read\n", "MountAccess: write\n"), "ReaderFunction: Metadata MountAccess is 'write'"),
    ],
)
def test_a_function_off_the_layout_is_named_with_the_fix(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    broken = tmp_path / "template.yaml"
    broken.write_text(FUNCTIONS_TEMPLATE.read_text().replace(*edit, 1))
    with pytest.raises(ValueError, match=re.escape(message)):
        read_functions(broken)


@pytest.mark.parametrize("function", FUNCTION_IDS)
def test_function_code_location(functions_template: dict[str, Any], function: str) -> None:
    name = function.removesuffix("Function").lower()
    assert functions_template["Resources"][function]["Properties"]["CodeUri"] == f"{name}/"
    assert (FUNCTIONS_TEMPLATE.parent / name / "app.py").is_file()


def test_shared_layer(functions_template: dict[str, Any]) -> None:
    layer = functions_template["Resources"]["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["ContentUri"] == "../layers/shared"
    assert (FUNCTIONS_TEMPLATE.parent / "../layers/shared").resolve() == REPO / "layers" / "shared"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64", "arm64"]
    assert layer["Properties"]["RetentionPolicy"] == "Delete"


def _access_point_schema(definition: str) -> dict[str, Any]:
    """A definition of cfn-lint's AWS::S3Files::AccessPoint schema (PosixUser, RootDirectory)."""
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", "AWS::S3Files::AccessPoint").schema
    return schema["definitions"][definition]["properties"]


def _schema_accepts(spec: dict[str, Any], value: str) -> bool:
    """Whether `value` meets a string property of the schema (numeric bounds apply to its digits)."""
    if not re.search(spec["pattern"], value) or not spec.get("minLength", 0) <= len(value):
        return False
    if len(value) > spec.get("maxLength", len(value)):
        return False
    return "minimum" not in spec or spec["minimum"] <= int(value) <= spec["maximum"]


def _id_samples() -> list[int]:
    """Every boundary of the id range and of each digit count, and a seeded spread between them."""
    edges = [0, 1, MAX_POSIX_ID, MAX_POSIX_ID + 1, 10 * MAX_POSIX_ID]
    floors = [MAX_POSIX_ID // 10**k * 10**k for k in range(1, 11)]  # where the pattern's branches meet
    edges += [
        n + d for k in range(1, 11) for n in (10**k, floors[k - 1], floors[k - 1] + 10**k) for d in (-1, 0, 1)
    ]
    spread = random.Random(42)
    return edges + [spread.randrange(0, 2 * MAX_POSIX_ID) for _ in range(2000)]


@pytest.mark.parametrize("parameter", ["PosixUid", "PosixGid"])
def test_posix_ids_are_exactly_the_schema_range_without_root(
    sam_template: dict[str, Any], parameter: str
) -> None:
    spec = sam_template["Parameters"][parameter]
    schema = _access_point_schema("PosixUser")[parameter.removeprefix("Posix")]
    assert schema["maximum"] == MAX_POSIX_ID
    for n in _id_samples():
        assert allowed(spec, str(n)) is (1 <= n <= MAX_POSIX_ID), n
        assert not allowed(spec, str(n)) or _schema_accepts(schema, str(n)), n


def test_secondary_gids_are_what_the_schema_takes(sam_template: dict[str, Any]) -> None:
    # The S3 Files schema bounds each id (0 to 4294967295) but not the count; EFS's access point
    # (whose model S3 Files shares) and NFS AUTH_SYS credentials carry at most 16 groups.
    spec = sam_template["Parameters"]["PosixSecondaryGids"]
    item = _access_point_schema("PosixUser")["SecondaryGids"]["items"]
    efs = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", "AWS::EFS::AccessPoint").schema
    assert efs["definitions"]["PosixUser"]["properties"]["SecondaryGids"]["maxItems"] == 16
    spread = random.Random(7)
    for n in _id_samples():
        listed = [str(n)] + [str(spread.randrange(1, MAX_POSIX_ID)) for _ in range(spread.randrange(0, 16))]
        value = ",".join(listed)
        assert allowed(spec, value) is (1 <= n <= MAX_POSIX_ID), value
        assert not allowed(spec, value) or all(_schema_accepts(item, gid) for gid in listed), value


def test_root_path_is_within_the_schema(sam_template: dict[str, Any]) -> None:
    spec = sam_template["Parameters"]["AccessPointRootPath"]
    schema = _access_point_schema("RootDirectory")["Path"]
    assert spec["MaxLength"] == schema["maxLength"] == 100
    alphabet = "ab-_.9/"
    spread = random.Random(3)
    samples = [
        "/" + "".join(spread.choice(alphabet) for _ in range(spread.randrange(0, 110))) for _ in range(5000)
    ]
    accepted = [s for s in samples if allowed(spec, s)]
    assert len(accepted) > 100  # the sample reaches the accepted space, not only its edges
    for value in accepted:
        parts = value.split("/")[1:]
        assert _schema_accepts(schema, value) and 1 <= len(parts) <= 4, value
        assert not any(part.startswith(".") for part in parts), value
