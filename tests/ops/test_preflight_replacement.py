"""Preflight refuses parameter changes that replace the stack's storage or network (create-only
properties from cfn-lint's provider schemas), on the real template.yaml: every parameter that reaches a
create-only property, both ways, then the whole preflight through main() against a moto stack.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber
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
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from s3files_ops.account import PreflightClients

TEMPLATE_TEXT = (REPO / "template.yaml").read_text()
TEMPLATE = load_template(REPO / "template.yaml")
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/app-dev/0123"
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
    result = check_replacements(TEMPLATE, old, TEMPLATE, old | {parameter: value})
    assert result.status is Status.FAIL
    assert result.detail.startswith(f"{parameter} {old[parameter]!r} -> {value!r} replaces ")
    assert {r.resource for r in replacements(TEMPLATE, old, TEMPLATE, old | {parameter: value})} == expected
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
    assert check_replacements(TEMPLATE, old, TEMPLATE, dict(old)).status is Status.PASS
    # Other settings change in place: nothing replaced.
    other = old | {"LogRetentionDays": "7", "ReservedConcurrency": "5", "DocumentPrefix": "docs"}
    result = check_replacements(TEMPLATE, old, TEMPLATE, other)
    assert result.status is Status.PASS
    assert "no create-only property of a guarded resource" in result.detail


def test_the_detail_names_the_create_only_paths_and_the_consequence() -> None:
    result = check_replacements(TEMPLATE, DEFAULTS, TEMPLATE, DEFAULTS | {"PosixUid": "1001"})
    assert "AccessPoint (AWS::S3Files::AccessPoint; create-only PosixUser/Uid, " in result.detail
    assert "RootDirectory/CreationPermissions/OwnerUid)" in result.detail
    assert "every write fails with EACCES" in result.detail
    assert "new AccessPointRootPath" in result.remediation


def test_leaving_the_created_vpc_deletes_it() -> None:
    found = {r.resource: r for r in replacements(TEMPLATE, DEFAULTS, TEMPLATE, DEFAULTS | EXISTING_VPC)}
    assert found["Vpc"].deleted and found["PrivateSubnetA"].deleted
    assert found["MountTargetA"].paths == ("SubnetId",)


def test_subnet_ids_do_not_matter_while_the_stack_creates_its_vpc() -> None:
    # The existing-VPC branch is not used: only the evaluated value counts, not the reference.
    result = check_replacements(
        TEMPLATE, DEFAULTS, TEMPLATE, DEFAULTS | {"SubnetIds": "subnet-0aaaaaaaaaaaaaaaa"}
    )
    assert result.status is Status.PASS


def test_direct_reads_and_prefix_list_only_touch_unguarded_rules() -> None:
    # The egress rule is replaced or removed, which is harmless: not refused.
    for change in ({"DirectS3Read": "DISABLED"}, {"S3PrefixListId": "pl-63a5400a"}):
        assert check_replacements(TEMPLATE, DEFAULTS, TEMPLATE, DEFAULTS | change).status is Status.PASS


def test_allowed_resources_warn_instead() -> None:
    new = DEFAULTS | {"PosixUid": "1001", "AccessPointRootPath": "/lambda-1001"}
    result = check_replacements(TEMPLATE, DEFAULTS, TEMPLATE, new, frozenset({"AccessPoint"}))
    assert result.status is Status.WARN
    assert "--allow-replace AccessPoint" in result.detail
    # Allowing one resource does not allow the others.
    partly = check_replacements(
        TEMPLATE, DEFAULTS, TEMPLATE, DEFAULTS | {"KmsKeyArn": KEY}, frozenset({"AccessPoint"})
    )
    assert partly.status is Status.FAIL
    assert "--allow-replace FileSystem,MountTargetA,MountTargetB" in partly.remediation


def test_the_functions_template_has_no_parameter_reaching_a_create_only_property() -> None:
    # Only the root stack is judged; this keeps that true for the nested functions stack.
    assert parameters_reaching_create_only(load_template(REPO / "functions" / "template.yaml")) == {}


def _edited(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    template = copy.deepcopy(TEMPLATE)
    change(template)
    return template


def test_a_template_edit_of_a_create_only_property_is_refused() -> None:
    def describe(template: dict[str, Any]) -> None:
        template["Resources"]["FunctionSecurityGroup"]["Properties"]["GroupDescription"] = "Lambda functions"

    result = check_replacements(TEMPLATE, DEFAULTS, _edited(describe), DEFAULTS)
    assert result.status is Status.FAIL
    assert result.detail.startswith(
        "template edits replace FunctionSecurityGroup (AWS::EC2::SecurityGroup; create-only GroupDescription)"
    )
    assert "25-40 minutes" in result.detail
    assert result.remediation.startswith("template edits: undo the edit of those create-only properties")


def test_a_guarded_resource_removed_from_the_template_is_refused() -> None:
    result = check_replacements(
        TEMPLATE, DEFAULTS, _edited(lambda t: t["Resources"].pop("AccessPoint")), DEFAULTS
    )
    assert result.status is Status.FAIL
    assert "AccessPoint (AWS::S3Files::AccessPoint; deleted)" in result.detail


def test_edits_outside_create_only_properties_pass() -> None:
    def tag(template: dict[str, Any]) -> None:
        template["Resources"]["FunctionSecurityGroup"]["Properties"]["Tags"].append(
            {"Key": "team", "Value": "x"}
        )

    assert check_replacements(TEMPLATE, DEFAULTS, _edited(tag), DEFAULTS).status is Status.PASS


def test_a_stack_deployed_before_the_az_parameters_updates_in_place() -> None:
    """The template before AvailabilityZoneIdA/B: its subnets' AZs evaluate the same as today's
    defaults, so upgrading replaces nothing."""

    def before(template: dict[str, Any]) -> None:
        for name in ("AvailabilityZoneIdA", "AvailabilityZoneIdB"):
            del template["Parameters"][name]
        for subnet, index in (("PrivateSubnetA", 0), ("PrivateSubnetB", 1)):
            properties = template["Resources"][subnet]["Properties"]
            del properties["AvailabilityZoneId"]
            properties["AvailabilityZone"] = {"Fn::Select": [index, {"Fn::GetAZs": ""}]}

    old_template = _edited(before)
    old = defaults(old_template)
    assert check_replacements(old_template, old, TEMPLATE, DEFAULTS).status is Status.PASS
    chosen = DEFAULTS | {"AvailabilityZoneIdA": "use1-az1", "AvailabilityZoneIdB": "use1-az2"}
    result = check_replacements(old_template, old, TEMPLATE, chosen)
    assert result.status is Status.FAIL
    assert result.detail.startswith("template edits replace PrivateSubnetA")  # new parameters: not "changed"


# ---------------------------------------------------------------- through main(): CloudFormation stubbed


def _stack(stubber: Stubber, previous: dict[str, str], template: str | None) -> None:
    """What check_stack and the update check read: the stack, its (no) functions, its template."""
    stack = {
        "StackName": "app-dev",
        "StackId": STACK_ID,
        "CreationTime": "2026-12-01T00:00:00Z",
        "StackStatus": "UPDATE_COMPLETE",
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in previous.items()],
    }
    stubber.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "app-dev"})
    stubber.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": STACK_ID})
    query = {"StackName": "app-dev", "TemplateStage": "Original"}
    if template is None:
        stubber.add_client_error("get_template", "AccessDenied", "not allowed", 403, expected_params=query)
    else:
        stubber.add_response("get_template", {"TemplateBody": template}, query)


def _preflight(app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], *argv: str) -> int:
    lam, s3files = stubs
    s3files.add_response("list_file_systems", {"fileSystems": []}, {"maxResults": 1})
    lam.add_response("get_account_settings", account_settings(1000))
    files = ["--config-file", str(app / "samconfig.toml"), "--template-file", str(REPO / "template.yaml")]
    return main(["preflight", *files, *argv], preflight_clients=account)


@pytest.fixture
def stubs(lam: tuple[Any, Stubber], s3files: tuple[Any, Stubber]) -> tuple[Stubber, Stubber]:
    return lam[1], s3files[1]


@pytest.fixture
def cfn(account: PreflightClients) -> Iterator[tuple[PreflightClients, Stubber]]:
    client = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield dataclasses.replace(account, cloudformation=client), stubber
        stubber.assert_no_pending_responses()


def _line(out: str) -> str:
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if f"] {PF_REPLACE}" in line)
    return "\n".join(" ".join(line.split()) for line in lines[at : at + 2])  # without the column padding


def test_cli_refuses_a_new_posix_uid_and_allows_it_deliberately(
    app: Path,
    cfn: tuple[PreflightClients, Stubber],
    stubs: tuple[Stubber, Stubber],
    capsys: pytest.CaptureFixture[str],
) -> None:
    clients, stubber = cfn
    _stack(stubber, DEFAULTS, TEMPLATE_TEXT)
    assert _preflight(app, clients, stubs, "--parameter-overrides", "PosixUid=1001") == 1
    line = _line(capsys.readouterr().out)
    assert line.startswith(f"[FAIL] {PF_REPLACE} PosixUid '1000' -> '1001' replaces AccessPoint")
    assert "fix: PosixUid: keep the value" in line
    assert "ALLOW_REPLACE=AccessPoint" in line
    _stack(stubber, DEFAULTS, TEMPLATE_TEXT)
    argv = ("--parameter-overrides", "PosixUid=1001", "--allow-replace", "AccessPoint")
    assert _preflight(app, clients, stubs, *argv) == 0
    assert _line(capsys.readouterr().out).startswith(f"[WARN] {PF_REPLACE} replacing on purpose")


def test_cli_passes_an_update_that_keeps_every_create_only_parameter(
    app: Path,
    cfn: tuple[PreflightClients, Stubber],
    stubs: tuple[Stubber, Stubber],
    capsys: pytest.CaptureFixture[str],
) -> None:
    clients, stubber = cfn
    _stack(stubber, DEFAULTS, json.dumps(TEMPLATE))  # JSON or YAML: both are read
    # samconfig's [default] changes LogRetentionDays (14): an update in place.
    assert _preflight(app, clients, stubs) == 0
    line = _line(capsys.readouterr().out)
    assert line.startswith(f"[PASS] {PF_REPLACE} LogRetentionDays change, no create-only property")


def test_cli_without_the_deployed_template_judges_the_parameters_and_warns(
    app: Path,
    cfn: tuple[PreflightClients, Stubber],
    stubs: tuple[Stubber, Stubber],
    capsys: pytest.CaptureFixture[str],
) -> None:
    clients, stubber = cfn
    _stack(stubber, DEFAULTS, None)
    assert _preflight(app, clients, stubs) == 0
    line = _line(capsys.readouterr().out)
    assert line.startswith(f"[WARN] {PF_REPLACE} LogRetentionDays change, no create-only property")
    assert "template edits unchecked" in line
    assert "fix: allow cloudformation:GetTemplate" in line
    _stack(stubber, DEFAULTS, None)
    assert _preflight(app, clients, stubs, "--parameter-overrides", "KmsKeyArn=" + KEY) == 1
    assert _line(capsys.readouterr().out).startswith(f"[FAIL] {PF_REPLACE} KmsKeyArn '' -> ")


def test_a_new_stack_has_nothing_to_replace(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _preflight(app, account, stubs, "--parameter-overrides", "PosixUid=1001") == 0
    assert PF_REPLACE not in capsys.readouterr().out
