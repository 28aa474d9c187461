"""Preflight refuses parameter changes that replace the stack's storage or network (create-only
properties from cfn-lint's provider schemas), on the real template.yaml: every parameter that reaches a
create-only property, both ways, then the whole preflight through main() against a moto stack.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from s3files_ops.checklist import Status
from s3files_ops.params import REPO, defaults, load_template
from s3files_ops.replacement import (
    GUARDED,
    PF_REPLACE,
    check_replacements,
    create_only,
    parameters_reaching_create_only,
    replacements,
)
from verify import main
from verify_fakes import account_settings

if TYPE_CHECKING:
    from pathlib import Path

    from botocore.stub import Stubber
    from s3files_ops.account import PreflightClients

TEMPLATE = load_template(REPO / "template.yaml")
DEFAULTS = defaults(TEMPLATE)
EXISTING_VPC = {
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": "subnet-0aaaaaaaaaaaaaaaa,subnet-0bbbbbbbbbbbbbbbb",
}
NETWORK = {"Vpc", "PrivateSubnetA", "PrivateSubnetB", "MountTargetSecurityGroup", "FunctionSecurityGroup"}
MOUNT_TARGETS = {"MountTargetA", "MountTargetB"}
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# Every parameter that reaches a create-only property: the deployed values it starts from, the new
# value, and the guarded resources that change replaces (or deletes).
CASES: dict[str, tuple[dict[str, str], str, set[str]]] = {
    "PosixUid": ({}, "1001", {"AccessPoint"}),
    "PosixGid": ({}, "1001", {"AccessPoint"}),
    "PosixSecondaryGids": ({}, "2000", {"AccessPoint"}),
    "AccessPointRootPath": ({}, "/data", {"AccessPoint"}),
    "KmsKeyArn": ({}, KEY, {"FileSystem", "AccessPoint", *MOUNT_TARGETS}),
    "VpcCidr": ({}, "10.43.0.0/16", NETWORK | MOUNT_TARGETS),
    "VpcId": ({}, EXISTING_VPC["VpcId"], NETWORK | MOUNT_TARGETS),
    # Even the order: MountTargetA takes the first subnet.
    "SubnetIds": (EXISTING_VPC, "subnet-0bbbbbbbbbbbbbbbb,subnet-0aaaaaaaaaaaaaaaa", MOUNT_TARGETS),
    "AvailabilityZoneIdA": ({}, "use1-az1", {"PrivateSubnetA", "MountTargetA"}),
    "AvailabilityZoneIdB": ({}, "use1-az2", {"PrivateSubnetB", "MountTargetB"}),
}


def test_every_parameter_reaching_a_create_only_property_has_a_case() -> None:
    # Derived from the schemas: a new parameter that can replace storage or network needs a case here.
    assert set(parameters_reaching_create_only(TEMPLATE)) == set(CASES)


def test_the_create_only_properties_come_from_cfn_lint_schemas() -> None:
    assert ("PosixUser", "Uid") in create_only("AWS::S3Files::AccessPoint")
    assert ("SubnetId",) in create_only("AWS::S3Files::MountTarget")
    assert ("KmsKeyId",) in create_only("AWS::S3Files::FileSystem")
    assert ("GroupDescription",) in create_only("AWS::EC2::SecurityGroup")
    assert create_only("AWS::Serverless::Function") == ()  # no provider schema: nothing to judge
    assert {r["Type"] for r in TEMPLATE["Resources"].values()} >= GUARDED.keys()  # each one is used


@pytest.mark.parametrize("parameter", CASES)
def test_a_changed_create_only_parameter_is_refused_naming_it(parameter: str) -> None:
    base, value, expected = CASES[parameter]
    old = DEFAULTS | base
    result = check_replacements(TEMPLATE, old, old | {parameter: value})
    assert result.status is Status.FAIL
    assert result.detail.startswith(f"{parameter} {old[parameter]!r} -> {value!r} replaces ")
    assert {r.resource for r in replacements(TEMPLATE, old, old | {parameter: value})} == expected
    for resource in expected:
        assert f"{resource} (" in result.detail
    in_order = ",".join(r for r in TEMPLATE["Resources"] if r in expected)
    assert f"--allow-replace {in_order}" in result.remediation
    assert result.remediation.startswith(f"{parameter}: ")
    assert "new stack" in result.remediation or "new AccessPointRootPath" in result.remediation


@pytest.mark.parametrize("parameter", CASES)
def test_an_unchanged_create_only_parameter_passes(parameter: str) -> None:
    base, _, _ = CASES[parameter]
    old = DEFAULTS | base
    assert check_replacements(TEMPLATE, old, dict(old)).status is Status.PASS
    # Other settings change in place: nothing replaced.
    other = old | {"LogRetentionDays": "7", "ReservedConcurrency": "5", "DocumentPrefix": "docs"}
    result = check_replacements(TEMPLATE, old, other)
    assert result.status is Status.PASS
    assert "no create-only property of a guarded resource" in result.detail


def test_the_detail_names_the_create_only_paths_and_the_consequence() -> None:
    result = check_replacements(TEMPLATE, DEFAULTS, DEFAULTS | {"PosixUid": "1001"})
    assert "AccessPoint (AWS::S3Files::AccessPoint; create-only PosixUser/Uid, " in result.detail
    assert "RootDirectory/CreationPermissions/OwnerUid)" in result.detail
    assert "every write fails with EACCES" in result.detail
    assert "new AccessPointRootPath" in result.remediation


def test_leaving_the_created_vpc_deletes_it() -> None:
    found = {r.resource: r for r in replacements(TEMPLATE, DEFAULTS, DEFAULTS | EXISTING_VPC)}
    assert found["Vpc"].deleted and found["PrivateSubnetA"].deleted
    assert found["MountTargetA"].paths == ("SubnetId",)


def test_subnet_ids_do_not_matter_while_the_stack_creates_its_vpc() -> None:
    # The existing-VPC branch is not used: only the evaluated value counts, not the reference.
    result = check_replacements(TEMPLATE, DEFAULTS, DEFAULTS | {"SubnetIds": "subnet-0aaaaaaaaaaaaaaaa"})
    assert result.status is Status.PASS


def test_direct_reads_and_prefix_list_only_touch_unguarded_rules() -> None:
    # The egress rule is replaced or removed, which is harmless: not refused.
    for change in ({"DirectS3Read": "DISABLED"}, {"S3PrefixListId": "pl-63a5400a"}):
        assert check_replacements(TEMPLATE, DEFAULTS, DEFAULTS | change).status is Status.PASS


def test_allowed_resources_warn_instead() -> None:
    new = DEFAULTS | {"PosixUid": "1001", "AccessPointRootPath": "/lambda-1001"}
    result = check_replacements(TEMPLATE, DEFAULTS, new, frozenset({"AccessPoint"}))
    assert result.status is Status.WARN
    assert "--allow-replace AccessPoint" in result.detail
    # Allowing one resource does not allow the others.
    partly = check_replacements(TEMPLATE, DEFAULTS, DEFAULTS | {"KmsKeyArn": KEY}, frozenset({"AccessPoint"}))
    assert partly.status is Status.FAIL
    assert "--allow-replace FileSystem,MountTargetA,MountTargetB" in partly.remediation


def test_the_functions_template_has_no_parameter_reaching_a_create_only_property() -> None:
    # Only the root stack is judged; this keeps that true for the nested functions stack.
    assert parameters_reaching_create_only(load_template(REPO / "functions" / "template.yaml")) == {}


# ---------------------------------------------------------------- through main(), against moto


@pytest.fixture
def deployed(aws: None) -> dict[str, str]:
    """A moto stack app-dev deployed with the template's defaults (its parameters are all that counts)."""
    template = {
        "Parameters": {name: {"Type": "String"} for name in DEFAULTS},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="app-dev",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in DEFAULTS.items()],
    )
    return DEFAULTS


def _preflight(app: Path, clients: PreflightClients, stubs: tuple[Stubber, Stubber], *argv: str) -> list[str]:
    lam, s3files = stubs
    s3files.add_response("list_file_systems", {"fileSystems": []}, {"maxResults": 1})
    lam.add_response("get_account_settings", account_settings(1000))
    files = ["--config-file", str(app / "samconfig.toml"), "--template-file", str(REPO / "template.yaml")]
    return [str(main(["preflight", *files, *argv], preflight_clients=clients))]


@pytest.fixture
def stubs(lam: tuple[Any, Stubber], s3files: tuple[Any, Stubber]) -> tuple[Stubber, Stubber]:
    return lam[1], s3files[1]


def _line(out: str) -> str:
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if f"] {PF_REPLACE}" in line)
    return "\n".join(" ".join(line.split()) for line in lines[at : at + 2])  # without the column padding


def test_cli_refuses_a_new_posix_uid_and_allows_it_deliberately(
    app: Path,
    account: PreflightClients,
    stubs: tuple[Stubber, Stubber],
    deployed: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _preflight(app, account, stubs, "--parameter-overrides", "PosixUid=1001") == ["1"]
    line = _line(capsys.readouterr().out)
    assert line.startswith(f"[FAIL] {PF_REPLACE} PosixUid '1000' -> '1001' replaces AccessPoint")
    assert "fix: PosixUid: keep the value" in line
    assert "ALLOW_REPLACE=AccessPoint" in line
    argv = ("--parameter-overrides", "PosixUid=1001", "--allow-replace", "AccessPoint")
    assert _preflight(app, account, stubs, *argv) == ["0"]
    assert _line(capsys.readouterr().out).startswith(f"[WARN] {PF_REPLACE} replacing on purpose")


def test_cli_passes_an_update_that_keeps_every_create_only_parameter(
    app: Path,
    account: PreflightClients,
    stubs: tuple[Stubber, Stubber],
    deployed: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # samconfig's [default] changes LogRetentionDays (14): an update in place.
    assert _preflight(app, account, stubs) == ["0"]
    line = _line(capsys.readouterr().out)
    assert line.startswith(f"[PASS] {PF_REPLACE} LogRetentionDays change, no create-only property")


def test_a_new_stack_has_nothing_to_replace(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _preflight(app, account, stubs, "--parameter-overrides", "PosixUid=1001") == ["0"]
    assert PF_REPLACE not in capsys.readouterr().out
