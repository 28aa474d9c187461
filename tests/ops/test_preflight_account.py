"""Preflight of the account and Region through main(): one test per outcome, each asserting the fix.

moto answers STS, CloudFormation, EC2 and Service Quotas (VPCs per Region: 5); the Lambda and s3files
stubs answer GetAccountSettings (moto lacks it) and ListFileSystems.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from verify import main
from verify_fakes import account_settings

if TYPE_CHECKING:
    from pathlib import Path

    from s3files_ops.account import PreflightClients

S3FILES_OK = ({"fileSystems": []}, {"maxResults": 1})


def _run(
    app: Path, clients: PreflightClients | None, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str]:
    files = ["--config-file", str(app / "samconfig.toml"), "--template-file", str(app / "template.yaml")]
    code = main(["preflight", *files, *argv], preflight_clients=clients)
    return code, capsys.readouterr().out


def _line(out: str, name: str) -> str:
    """The checklist line of one step, with its fix line when there is one."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("[") and f"] {name}" in line)
    fix = lines[at + 1] if at + 1 < len(lines) and lines[at + 1].lstrip().startswith("fix:") else ""
    return f"{lines[at]}\n{fix}"


def _step(
    app: Path,
    clients: PreflightClients | None,
    capsys: pytest.CaptureFixture[str],
    name: str,
    *argv: str,
    code: int = 1,
) -> str:
    """Run preflight, check its exit code (2 when the credentials and Region step fails: nothing can
    deploy then), and return the line (and fix) of the step ``name``."""
    exit_code, out = _run(app, clients, capsys, *argv)
    assert exit_code == code, out
    return _line(out, name)


@pytest.fixture
def stubs(lam: tuple[Any, Stubber], s3files: tuple[Any, Stubber]) -> tuple[Stubber, Stubber]:
    return lam[1], s3files[1]


def _answer(stubs: tuple[Stubber, Stubber], limit: int, unreserved: int | None = None) -> None:
    """S3 Files answers; the account has this Lambda concurrency."""
    lam, s3files = stubs
    s3files.add_response("list_file_systems", *S3FILES_OK)
    lam.add_response("get_account_settings", account_settings(limit, unreserved))


def test_all_clear(app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: Any) -> None:
    _answer(stubs, 1000, 1000)
    code, out = _run(app, account, capsys)
    assert code == 0, out
    assert out.startswith("Parameters of stack app-dev: ReservedConcurrency=0 (template default), ")
    assert "VpcId=(empty) (template default)\n" in out
    assert "[PASS] AWS credentials and Region" in out
    assert "account 123456789012" in out and "in us-east-1 (from AWS_DEFAULT_REGION)" in out
    assert "[PASS] Stack state" in out and "app-dev: new, sam deploy creates it" in out
    assert "[PASS] S3 Files in the Region" in out
    assert "ReservedConcurrency=0 (template default): no reservation; account limit 1000" in out
    # moto's region holds its default VPC; its Service Quotas answer the default quota of 5.
    assert "1 in use in us-east-1, quota 5; the stack creates 1" in out
    assert "us-east-1a (use1-az6), us-east-1b (use1-az1), the first two of Fn::GetAZs" in out
    assert "fix:" not in out
    assert out.strip().endswith("6 pass, 0 fail, 0 warn, 0 skip")


def test_small_account_without_a_reservation_passes(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: Any
) -> None:
    _answer(stubs, 10)
    code, out = _run(app, account, capsys)
    assert code == 0, out
    assert "no reservation; account limit 10, unreserved 10" in _line(out, "Lambda concurrency")


def test_small_account_with_a_reservation_fails_with_the_settings_to_change(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: Any
) -> None:
    _answer(stubs, 10)
    line = _step(app, account, capsys, "Lambda concurrency", "--parameter-overrides", "ReservedConcurrency=2")
    assert line.startswith("[FAIL]")
    assert (
        "ReservedConcurrency=2 (command line) reserves 6 (Functions/WriterFunction 2, "
        "Functions/ReaderFunction 2, Functions/UnzipFunction 2)" in line
    )
    assert "can reserve at most 0 while keeping Lambda's minimum of 10 unreserved" in line
    assert "UnreservedConcurrentExecution below its minimum value" in line
    assert "fix: set ReservedConcurrency=0 (no reservation) in parameter_overrides of [default.deploy" in line
    assert "at most ReservedConcurrency=" not in line  # none fits on this account
    assert "--service-code lambda --quota-code L-B99A9384 --desired-value 106 --region us-east-1" in line


def test_large_account_with_room_for_the_reservation_passes(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: Any
) -> None:
    _answer(stubs, 1000, 400)  # other functions reserve 600
    line = _step(
        app, account, capsys, "Lambda concurrency", "--config-env", "prod", "--region", "us-east-1", code=0
    )
    assert "ReservedConcurrency=50 (samconfig.toml [prod]) reserves 150" in line
    assert "250 stay unreserved (minimum 100)" in line


def test_large_account_without_room_fails_and_names_the_largest_reservation_that_fits(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: Any
) -> None:
    _answer(stubs, 1000, 200)  # other functions reserve 800
    line = _step(app, account, capsys, "Lambda concurrency", "--config-env", "prod", "--region", "us-east-1")
    assert line.startswith("[FAIL]")
    assert "reserves 150" in line and "can reserve at most 100 while keeping Lambda's minimum of 100" in line
    assert "parameter_overrides of [prod.deploy.parameters] in samconfig.toml" in line
    assert "or at most ReservedConcurrency=33" in line
    assert "--desired-value 1050" in line


@pytest.mark.parametrize("reserved", ["0", "3"])
def test_unreadable_account_settings_only_warn_about_a_reservation(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: Any, reserved: str
) -> None:
    lam, s3files = stubs
    s3files.add_response("list_file_systems", *S3FILES_OK)
    lam.add_client_error("get_account_settings", "AccessDeniedException", "not authorized", 403)
    line = _step(
        app,
        account,
        capsys,
        "Lambda concurrency",
        "--parameter-overrides",
        f"ReservedConcurrency={reserved}",
        code=0,
    )
    if reserved == "0":
        assert line.startswith("[PASS]") and "ReservedConcurrency=0 (command line): no reservation" in line
    else:
        assert line.startswith("[WARN]")
        assert "reserves 9, unchecked: AccessDeniedException: not authorized" in line
        assert (
            "fix: allow lambda:GetAccountSettings to check it, or reserve nothing: ReservedConcurrency=0"
            in line
        )


def test_an_update_counts_what_the_stack_already_reserves(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: Any
) -> None:
    """The stack's functions hold 100 today; an update hands it back before reserving 150."""
    template = {
        "Parameters": {"ReservedConcurrency": {"Type": "Number"}},
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}},
            },
            "Writer": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.13",
                    "Handler": "app.handler",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Code": {"ZipFile": "def handler(event, context): pass"},
                },
            },
        },
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="app-prod",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "ReservedConcurrency", "ParameterValue": "50"}],
    )
    writer = next(
        r["PhysicalResourceId"]
        for r in account.cloudformation.list_stack_resources(StackName="app-prod")["StackResourceSummaries"]
        if r["ResourceType"] == "AWS::Lambda::Function"
    )
    stubs[0].add_response(
        "get_function_concurrency", {"ReservedConcurrentExecutions": 100}, {"FunctionName": writer}
    )
    _answer(stubs, 1000, 150)  # unreserved 150 = 1000 - 750 (others) - 100 (this stack)
    code, out = _run(app, account, capsys, "--config-env", "prod", "--region", "us-east-1")
    assert code == 0, out
    assert "app-prod is CREATE_COMPLETE" in out and "its functions reserve 100 now" in out
    assert "(+100 the stack holds now); 100 stay unreserved (minimum 100)" in out


def test_a_reservation_of_zero_fails_because_the_functions_would_never_run(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: Any
) -> None:
    (app / "functions.yaml").write_text(
        (app / "functions.yaml")
        .read_text()
        .replace(
            "!If [HasReservation, !Ref ReservedConcurrency, !Ref AWS::NoValue]", "!Ref ReservedConcurrency"
        )
    )
    stubs[1].add_response("list_file_systems", *S3FILES_OK)
    line = _step(app, account, capsys, "Lambda concurrency")
    assert "a reservation of 0: Lambda would throttle every invocation" in line
    assert "!If [HasReservation, !Ref ReservedConcurrency, !Ref AWS::NoValue]" in line


def test_region_without_s3files_fails_and_says_pick_another(
    app: Path, account: PreflightClients, lam: tuple[Any, Stubber], capsys: Any
) -> None:
    s3files = boto3.client(
        "s3files", region_name="us-east-1", config=Config(retries={"total_max_attempts": 1})
    )

    def no_endpoint(request: Any, **_: Any) -> None:
        raise EndpointConnectionError(endpoint_url=request.url)

    s3files.meta.events.register("before-send.s3files.ListFileSystems", no_endpoint)
    lam[1].add_response("get_account_settings", account_settings(1000))
    clients = account.__class__(**{**vars(account), "s3files": s3files})
    line = _step(app, clients, capsys, "S3 Files in the Region")
    assert line.startswith("[FAIL]")
    assert "S3 Files does not answer in us-east-1 (Could not connect to the endpoint URL" in line
    assert "fix: deploy to a Region where Amazon S3 Files is available" in line
    assert "export AWS_DEFAULT_REGION" in line


def test_s3files_access_denied_only_warns(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: Any
) -> None:
    lam, s3files = stubs
    s3files.add_client_error("list_file_systems", "AccessDeniedException", http_status_code=403)
    lam.add_response("get_account_settings", account_settings(1000))
    line = _step(app, account, capsys, "S3 Files in the Region", code=0)
    assert line.startswith("[WARN]") and "cannot tell whether S3 Files exists in us-east-1" in line
    assert "fix: allow s3files:ListFileSystems" in line


def test_full_vpc_quota_fails_with_the_quota_request(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: Any
) -> None:
    for n in range(4):  # + the default VPC = 5 of 5
        account.ec2.create_vpc(CidrBlock=f"10.{n}.0.0/16")
    _answer(stubs, 1000)
    line = _step(app, account, capsys, "VPCs per Region quota")
    assert "[FAIL]" in line and "5 in use in us-east-1, quota 5: creating the stack's VPC would fail" in line
    assert "--service-code vpc --quota-code L-F678F1CE --desired-value 10 --region us-east-1" in line
    assert "delete an unused VPC" in line and "setting VpcId and SubnetIds" in line


def test_last_free_vpc_warns(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: Any
) -> None:
    for n in range(3):
        account.ec2.create_vpc(CidrBlock=f"10.{n}.0.0/16")
    _answer(stubs, 1000)
    line = _step(app, account, capsys, "VPCs per Region quota", code=0)
    assert (
        line.startswith("[WARN]") and "4 in use in us-east-1, quota 5: this stack takes the last one" in line
    )
    assert "fix: request more" in line


def test_unreadable_vpc_quota_warns_and_assumes_the_default(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: Any
) -> None:
    quotas = boto3.client("service-quotas", region_name="us-east-1")
    _answer(stubs, 1000)
    with Stubber(quotas) as denied:
        denied.add_client_error("get_service_quota", "AccessDeniedException", "not authorized", 403)
        line = _step(
            app,
            account.__class__(**{**vars(account), "servicequotas": quotas}),
            capsys,
            "VPCs per Region quota",
            code=0,
        )
    assert line.startswith("[WARN]")
    assert "1 in use in us-east-1; the quota is not readable (AccessDeniedException: not authorized)" in line
    assert "so the default 5 is assumed" in line
    assert "fix: allow servicequotas:GetServiceQuota to check it" in line


def test_missing_region_fails_first_with_what_to_set(
    app: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    code, out = _run(app, None, capsys)
    assert code == 2  # nothing can deploy without a Region either: make deploy offers no SKIP_PREFLIGHT
    line = _line(out, "AWS credentials and Region")
    assert line.startswith("[FAIL] AWS credentials and Region") and "no AWS Region set" in line
    # conftest sets AWS_REGION, which botocore (and so sam deploy) ignores: say so.
    assert "export AWS_DEFAULT_REGION=eu-west-1 (AWS_REGION=us-east-1 is set, but the SAM CLI" in line
    assert 'region = "eu-west-1" under [default.deploy.parameters] in samconfig.toml' in line
    assert "no AWS credentials" not in line
    assert out.count("[SKIP]") == 5


def test_missing_credentials_and_region_are_reported_together(
    app: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    line = _step(app, None, capsys, "AWS credentials and Region", code=2)
    assert "no AWS Region set and no AWS credentials found" in line
    assert "export AWS_DEFAULT_REGION=eu-west-1, or add" in line
    assert "get credentials: run `aws configure`" in line and "AWS_PROFILE" in line


def test_missing_credentials_with_a_region_from_samconfig(
    app: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    # [prod.global.parameters] sets the Region: only the credentials are missing.
    line = _step(app, None, capsys, "AWS credentials and Region", "--config-env", "prod", code=2)
    assert line.startswith("[FAIL]") and "no AWS credentials found" in line
    assert "no AWS Region" not in line and "AWS_DEFAULT_REGION" not in line
    assert "fix: get credentials: run `aws configure`" in line


def test_rejected_credentials_fail_with_the_refresh_hint(
    app: Path, account: PreflightClients, capsys: pytest.CaptureFixture[str]
) -> None:
    sts = boto3.client("sts", region_name="us-east-1")
    with Stubber(sts) as expired:
        expired.add_client_error(
            "get_caller_identity", "ExpiredToken", "The security token included in the request is expired"
        )
        line = _step(
            app,
            account.__class__(**{**vars(account), "sts": sts}),
            capsys,
            "AWS credentials and Region",
            code=2,
        )
    assert "credentials rejected: ExpiredToken: The security token" in line
    assert "aws sso login" in line


def test_unknown_profile_is_named(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _step(app, None, capsys, "AWS credentials and Region", "--profile", "no-such-profile", code=2)
    assert "profile no-such-profile not found" in line
    assert "aws configure --profile no-such-profile" in line


def test_a_rolled_back_stack_must_be_deleted_first(
    app: Path, account: PreflightClients, stubs: tuple[Stubber, Stubber], capsys: Any
) -> None:
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(cloudformation) as cfn:
        stack = {"StackName": "app-prod", "StackId": "arn:stack", "CreationTime": "2026-11-27T00:00:00Z"}
        cfn.add_response("describe_stacks", {"Stacks": [stack | {"StackStatus": "ROLLBACK_COMPLETE"}]})
        _answer(stubs, 1000)
        clients = account.__class__(**{**vars(account), "cloudformation": cloudformation})
        code, out = _run(app, clients, capsys, "--config-env", "prod", "--region", "us-east-1")
    assert code == 1
    line = _line(out, "Stack state")
    assert (
        "app-prod is ROLLBACK_COMPLETE (a failed create or delete): CloudFormation cannot update it" in line
    )
    assert "fix: delete it, then deploy again: `make delete ENV=prod`" in line
    assert "[PASS] Lambda concurrency" in out  # judged as a new stack: nothing held, nothing previous
