"""Preflight of the target account and Region: credentials, the stack's state, S3 Files, Lambda
concurrency, the VPC quota. Each check names the setting or quota at stake and what to do about it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, ProfileNotFound

from s3files_ops.checklist import Status, StepResult, error_text, option, step
from s3files_ops.params import total

if TYPE_CHECKING:
    from collections.abc import Mapping

    from botocore.client import BaseClient

    from s3files_ops.params import Reservation, SamConfig

PF_IDENTITY = "AWS credentials and Region"
PF_STACK = "Stack state"
PF_S3FILES = "S3 Files in the Region"
PF_CONCURRENCY = "Lambda concurrency for reservations"
PF_VPC_QUOTA = "VPCs per Region quota"
RESERVED_CONCURRENCY = "ReservedConcurrency"
VPC_QUOTA_CODE = "L-F678F1CE"  # Service Quotas, service code vpc: "VPCs per Region"
DEFAULT_VPC_QUOTA = 5
LAMBDA_QUOTA_CODE = "L-B99A9384"  # Service Quotas, service code lambda: "Concurrent executions"
CREDENTIALS_FIX = (
    "get credentials: run `aws configure` (access keys), or `aws configure sso` and `export "
    "AWS_PROFILE=<profile>` (`aws sso login` when the session expires), or export AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY"
)
# CloudFormation refuses updates in these states: the stack must be deleted first.
DELETE_FIRST = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"}


@dataclass(frozen=True)
class PreflightClients:
    sts: BaseClient
    cloudformation: BaseClient
    lambda_: BaseClient
    s3files: BaseClient
    ec2: BaseClient
    servicequotas: BaseClient

    @classmethod
    def from_session(cls, session: boto3.Session) -> PreflightClients:
        # Few retries and short timeouts: a Region without an endpoint should fail in seconds.
        config = Config(connect_timeout=5, read_timeout=20, retries={"mode": "standard", "max_attempts": 2})
        names = ("sts", "cloudformation", "lambda", "s3files", "ec2", "service-quotas")
        return cls(*(session.client(name, config=config) for name in names))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Target:
    """Where sam deploy would go (--region, else samconfig.toml, else boto3's chain: AWS_DEFAULT_REGION,
    then the profile's config) and what is missing for it, reported together by check_identity.
    """

    session: boto3.Session | None
    region: str | None
    source: str
    problems: tuple[tuple[str, str], ...] = ()


def region_fix(config: SamConfig) -> str:
    hint = f'region = "eu-west-1" under [{config.env}.deploy.parameters] in {config.path.name}'
    unread = os.environ.get("AWS_REGION")
    note = (
        f" (AWS_REGION={unread} is set, but the SAM CLI and boto3 read AWS_DEFAULT_REGION)" if unread else ""
    )
    return (
        f"set a Region where S3 Files is available: export AWS_DEFAULT_REGION=eu-west-1{note}, or add "
        f"{hint}, or run `aws configure set region eu-west-1`"
    )


def resolve_target(region: str | None, profile: str | None, config: SamConfig) -> Target:
    """Find the Region and credentials sam deploy would use, without calling AWS."""
    profile = profile or config.profile
    try:
        session = boto3.Session(profile_name=profile)
    except ProfileNotFound:
        fix = f"create it with `aws configure --profile {profile}` (or `aws configure sso`), or pick another"
        return Target(None, region or config.region, "", ((f"profile {profile} not found", fix),))
    if region:
        source = "--region"
    elif config.region:
        region, source = config.region, f"{config.path.name} [{config.env}]"
    elif region := session.region_name:
        source = (
            "AWS_DEFAULT_REGION"
            if os.environ.get("AWS_DEFAULT_REGION")
            else f"profile {session.profile_name}"
        )
    else:
        source = ""
    problems = []
    if not region:
        problems.append(("no AWS Region set", region_fix(config)))
    if session.get_credentials() is None:
        problems.append(("no AWS credentials found", CREDENTIALS_FIX))
    if region and region != session.region_name:
        session = boto3.Session(region_name=region, profile_name=profile)
    return Target(session, region, source, tuple(problems))


def check_identity(target: Target, sts: BaseClient | None) -> StepResult:
    """Region and credentials in one line, so a user missing both fixes both at once."""
    if target.problems or sts is None:
        return StepResult(
            PF_IDENTITY,
            Status.FAIL,
            " and ".join(what for what, _ in target.problems),
            "; ".join(fix for _, fix in target.problems),
        )
    try:
        who = sts.get_caller_identity()
    except ClientError as exc:
        return StepResult(
            PF_IDENTITY, Status.FAIL, f"credentials rejected: {error_text(exc)}", CREDENTIALS_FIX
        )
    except EndpointConnectionError as exc:
        fix = f"check the Region name {target.region} (`aws ec2 describe-regions`) and network access to AWS"
        return StepResult(PF_IDENTITY, Status.FAIL, str(exc), fix)
    except BotoCoreError as exc:
        return StepResult(PF_IDENTITY, Status.FAIL, str(exc), CREDENTIALS_FIX)
    return StepResult(
        PF_IDENTITY,
        Status.PASS,
        f"account {who['Account']} ({who['Arn']}) in {target.region} (from {target.source})",
        data=who["Account"],
    )


@dataclass(frozen=True)
class Deployed:
    """What an update starts from: the stack's parameter values and the reservations its functions hold."""

    previous: dict[str, str] = field(default_factory=dict)
    reserved: dict[str, int] = field(default_factory=dict)


def _reserved_now(cloudformation: BaseClient, lambda_: BaseClient, stack: str) -> dict[str, int]:
    """Function name -> its reserved concurrency, through nested stacks."""
    reserved: dict[str, int] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        for resource in page["StackResourceSummaries"]:
            physical = resource.get("PhysicalResourceId")
            if not physical or resource["ResourceStatus"] == "DELETE_COMPLETE":
                continue
            if resource["ResourceType"] == "AWS::CloudFormation::Stack":
                reserved |= _reserved_now(cloudformation, lambda_, physical)
            elif resource["ResourceType"] == "AWS::Lambda::Function":
                try:
                    amount = lambda_.get_function_concurrency(FunctionName=physical).get(
                        "ReservedConcurrentExecutions"
                    )
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                        continue
                    raise
                if amount is not None:
                    reserved[physical] = amount
    return reserved


@step(PF_STACK)
def check_stack(
    cloudformation: BaseClient, lambda_: BaseClient, stack_name: str | None, config: SamConfig
) -> StepResult:
    """PASS for a new stack or one CloudFormation can update; ``data`` = Deployed (empty when new)."""
    if not stack_name:
        return StepResult(
            PF_STACK, Status.SKIP, f"no stack_name in {config.path.name} [{config.env}]", data=Deployed()
        )
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" not in error_text(exc):
            raise
        return StepResult(PF_STACK, Status.PASS, f"{stack_name}: new, sam deploy creates it", data=Deployed())
    status = stack["StackStatus"]
    if status == "REVIEW_IN_PROGRESS":  # a change set that never ran: sam deploy creates the stack anew
        return StepResult(
            PF_STACK, Status.PASS, f"{stack_name}: {status}, sam deploy creates it", data=Deployed()
        )
    make_env = "" if config.env == "default" else f" ENV={config.env}"
    if status in DELETE_FIRST:
        return StepResult(
            PF_STACK,
            Status.FAIL,
            f"{stack_name} is {status} (a failed create or delete): CloudFormation cannot update it",
            f"delete it, then deploy again: `make delete{make_env}` (the data bucket is retained)",
            data=Deployed(),
        )
    previous = {
        p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", []) if "ParameterValue" in p
    }
    deployed = Deployed(previous, _reserved_now(cloudformation, lambda_, stack["StackId"]))
    if status.endswith("_IN_PROGRESS") or status == "UPDATE_ROLLBACK_FAILED":
        fix = (
            f"`aws cloudformation continue-update-rollback --stack-name {stack_name}`, then deploy again"
            if status == "UPDATE_ROLLBACK_FAILED"
            else f"wait until it ends (`aws cloudformation describe-stacks --stack-name {stack_name}`), "
            "then deploy"
        )
        return StepResult(
            PF_STACK,
            Status.FAIL,
            f"{stack_name} is {status}: CloudFormation refuses updates",
            fix,
            data=deployed,
        )
    held = sum(deployed.reserved.values())
    return StepResult(
        PF_STACK,
        Status.PASS,
        f"{stack_name} is {status}: an update keeps the previous value of every parameter not overridden; "
        f"its functions reserve {held} now",
        data=deployed,
    )


def check_s3files(s3files: BaseClient, region: str) -> StepResult:
    """PASS when S3 Files answers a one-item list; FAIL when the Region has no S3 Files endpoint."""
    try:
        s3files.list_file_systems(maxResults=1)
    except (EndpointConnectionError, ClientError) as exc:
        if isinstance(exc, ClientError) and "AccessDenied" in exc.response.get("Error", {}).get("Code", ""):
            return StepResult(
                PF_S3FILES,
                Status.WARN,
                f"cannot tell whether S3 Files exists in {region}: {error_text(exc)}",
                "allow s3files:ListFileSystems to this identity to check it (the deploy itself needs "
                "s3files:CreateFileSystem and the other create actions)",
            )
        reason = error_text(exc) if isinstance(exc, ClientError) else str(exc)
        return StepResult(
            PF_S3FILES,
            Status.FAIL,
            f"S3 Files does not answer in {region} ({reason}): the stack's file system cannot be "
            "created there",
            "deploy to a Region where Amazon S3 Files is available (try `aws s3files list-file-systems "
            f"--region <region>`): set region in samconfig.toml or export AWS_DEFAULT_REGION (check one "
            f"first with {option('--region <region>')})",
        )
    except BotoCoreError as exc:
        return StepResult(PF_S3FILES, Status.FAIL, str(exc), "check network access to the AWS API endpoints")
    return StepResult(PF_S3FILES, Status.PASS, f"s3files:ListFileSystems answered in {region}")


@dataclass(frozen=True)
class Plan:
    """What the deploy reserves, what it would reserve with ReservedConcurrency=0 (the template's fixed
    reservations), and how many functions reserve ReservedConcurrency each (per_unit).
    """

    reservations: list[Reservation]
    at_zero: list[Reservation]
    per_unit: int
    setting: str  # "ReservedConcurrency=10 (samconfig.toml [default])", for the messages
    where_to_set: str  # where the user changes it

    @property
    def requested(self) -> int:
        return total(self.reservations)

    @property
    def fixed(self) -> int:
        return total(self.at_zero)


@step(PF_CONCURRENCY)
def check_concurrency(lambda_: BaseClient, plan: Plan, held: Mapping[str, int], region: str) -> StepResult:
    """FAIL when Lambda would refuse the reservations: they may not take the unreserved pool below
    its floor. ``held`` = what the stack's functions reserve today (an update gives it back first).
    """
    never_run = [r.function for r in plan.reservations if r.amount == 0]
    if never_run:
        return StepResult(
            PF_CONCURRENCY,
            Status.FAIL,
            f"{plan.setting} gives {', '.join(never_run)} a reservation of 0: Lambda would throttle "
            "every invocation",
            f"set {RESERVED_CONCURRENCY} above 0, or use a template that leaves ReservedConcurrentExecutions "
            f"out at 0 (!If [HasReservation, !Ref {RESERVED_CONCURRENCY}, !Ref AWS::NoValue])",
        )
    try:
        limits = lambda_.get_account_settings()["AccountLimit"]
    except ClientError as exc:
        if not plan.requested:
            return StepResult(PF_CONCURRENCY, Status.PASS, f"{plan.setting}: no reservation")
        return StepResult(
            PF_CONCURRENCY,
            Status.WARN,
            f"{plan.setting} reserves {plan.requested}, unchecked: {error_text(exc)}",
            "allow lambda:GetAccountSettings to check it, or reserve nothing: "
            f"{RESERVED_CONCURRENCY}=0 in {plan.where_to_set}",
        )
    limit, unreserved = limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]
    # Lambda keeps the unreserved pool at or above a floor: 100 where the limit is >= 1,000, and (as
    # "below its minimum value of [10]" shows) the whole limit on new accounts of 10 or 50, where no
    # reservation is possible. AWS documents only the 100, so take the lower bound of both readings.
    floor = min(100, limit)
    pool = unreserved + sum(held.values())
    account = f"limit {limit}, unreserved {unreserved}" + (
        f" (+{sum(held.values())} the stack holds now)" if held else ""
    )
    if not plan.requested:
        return StepResult(PF_CONCURRENCY, Status.PASS, f"{plan.setting}: no reservation; account {account}")
    listing = ", ".join(f"{r.function} {r.amount}" for r in plan.reservations if r.amount)
    left = pool - plan.requested
    if left >= floor:
        return StepResult(
            PF_CONCURRENCY,
            Status.PASS,
            f"{plan.setting} reserves {plan.requested} ({listing}); account {account}; {left} stay "
            f"unreserved (minimum {floor})",
        )
    if pool - plan.fixed >= floor:
        fits = (pool - floor - plan.fixed) // plan.per_unit if plan.per_unit else 0
        options = [f"set {RESERVED_CONCURRENCY}=0 (no reservation) in {plan.where_to_set}"]
        options += [f"at most {RESERVED_CONCURRENCY}={fits}"] if fits > 0 else []
    else:
        fixed = ", ".join(f"{r.function} {r.amount}" for r in plan.at_zero if r.amount)
        options = [
            f"remove the ReservedConcurrentExecutions the template fixes whatever the parameters ({fixed})"
        ]
    others = limit - pool
    options.append(
        f"request a higher Lambda quota 'Concurrent executions' ({LAMBDA_QUOTA_CODE}) in the Service "
        "Quotas console, or `aws service-quotas request-service-quota-increase --service-code lambda "
        f"--quota-code {LAMBDA_QUOTA_CODE} --desired-value {others + plan.requested + 100} --region {region}`"
    )
    return StepResult(
        PF_CONCURRENCY,
        Status.FAIL,
        f"{plan.setting} reserves {plan.requested} ({listing}), but the account ({account}) can reserve "
        f"at most {max(pool - floor, 0)} while keeping Lambda's minimum of {floor} unreserved: the deploy "
        "would roll back ('decreases account's UnreservedConcurrentExecution below its minimum value')",
        "; or ".join(options),
    )


def _vpc_quota(servicequotas: BaseClient) -> tuple[float, str]:
    """(the applied VPCs-per-Region quota, or its default, ""), or (5, why it could not be read)."""
    try:
        try:
            quota = servicequotas.get_service_quota(ServiceCode="vpc", QuotaCode=VPC_QUOTA_CODE)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchResourceException":
                raise
            quota = servicequotas.get_aws_default_service_quota(ServiceCode="vpc", QuotaCode=VPC_QUOTA_CODE)
        return quota["Quota"]["Value"], ""
    except ClientError as exc:
        return DEFAULT_VPC_QUOTA, error_text(exc)
    except BotoCoreError as exc:
        return DEFAULT_VPC_QUOTA, str(exc)


@step(PF_VPC_QUOTA)
def check_vpc_quota(ec2: BaseClient, servicequotas: BaseClient, region: str) -> StepResult:
    """Created-VPC mode: FAIL when no VPC is left under the quota, WARN when this stack takes the last one
    or when the quota cannot be read (then the default 5 is assumed).
    """
    in_use = sum(len(page["Vpcs"]) for page in ec2.get_paginator("describe_vpcs").paginate())
    quota, unreadable = _vpc_quota(servicequotas)
    limit = int(quota)
    fix = (
        "request more: Service Quotas console > Amazon Virtual Private Cloud (Amazon VPC) > VPCs per "
        "Region, or `aws service-quotas request-service-quota-increase --service-code vpc --quota-code "
        f"{VPC_QUOTA_CODE} --desired-value {max(in_use, limit) + 5} --region {region}`; or delete an "
        "unused VPC; or deploy into an existing VPC by setting VpcId and SubnetIds (two private subnets "
        "in two AZs)"
    )
    counted = f"{in_use} in use in {region}"  # the default VPC counts too
    if unreadable:
        full = in_use >= limit
        return StepResult(
            PF_VPC_QUOTA,
            Status.WARN,
            f"{counted}; the quota is not readable ({unreadable}), so the default {limit} is assumed"
            + (": unless it was raised, the stack's VPC will not fit" if full else ""),
            "allow servicequotas:GetServiceQuota to check it" + (f"; {fix}" if full else ""),
        )
    if in_use >= limit:
        return StepResult(
            PF_VPC_QUOTA,
            Status.FAIL,
            f"{counted}, quota {limit}: creating the stack's VPC would fail (VpcLimitExceeded)",
            fix,
        )
    if in_use + 1 == limit:
        return StepResult(
            PF_VPC_QUOTA, Status.WARN, f"{counted}, quota {limit}: this stack takes the last one", fix
        )
    return StepResult(PF_VPC_QUOTA, Status.PASS, f"{counted}, quota {limit}; the stack creates 1")
