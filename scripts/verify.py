"""Pre-deploy and post-deploy checklists for the S3 Files Lambda stack.

Usage::

    verify.py [verify] --stack NAME [--region R] [--profile P] [--wait-seconds 600]
              [--export-wait-seconds 180] [--invoke-attempts 6]
    verify.py preflight [--config-env ENV] [--parameter-overrides K=V ..] [--vpc-id vpc-..
              --subnet-ids subnet-a,subnet-b] [--allow-replace ID,..] [--region R] [--profile P]
              [--stack-name NAME]
    verify.py credentials [--region R] [--profile P]

verify: stack outputs -> file system and mount targets available -> NFS security group rules -> each
function's VPC, access point and a mount target per AZ -> writer commits a probe document
(``verify-probe-<UTC timestamp>``, left in place as evidence) -> reader returns it -> it is exported
to S3 -> the functions' logs since the start hold no mount errors, permission denials or timeouts;
then the URL of the stack's CloudWatch dashboard (output DashboardUrl).
preflight, with the parameters sam deploy --config-env ENV would use (template defaults, the stack's
previous values, samconfig.toml's parameter_overrides, then --parameter-overrides/--vpc-id/--subnet-ids):
credentials and Region -> the stack can be created or updated -> an update replaces no storage or
network resource (create-only properties from cfn-lint's schemas; parameters and template edits) ->
S3 Files answers in the Region -> the account's Lambda concurrency leaves room for the reservations ->
created VPC: the VPCs-per-Region quota and the two AZs its subnets get (none where Lambda does not run);
existing VPC: the subnets exist in two AZs, VPC DNS attributes, a route to S3 (warning).

Prints one PASS/FAIL/WARN/SKIP line per step, a ``fix:`` line under each FAIL and WARN, and exits 1
when any step failed (0 otherwise); preflight exits 2 when no credentials or no Region are found (then
nothing can deploy either, so `make deploy` does not offer SKIP_PREFLIGHT=1). credentials (the first
step of `make publish`) only checks that boto3 finds credentials and a Region: 0, else 2 with the fix.
The caller needs cloudformation:DescribeStacks,
s3files:GetFileSystem, s3files:ListMountTargets, ec2:Describe*, lambda:GetFunctionConfiguration,
lambda:InvokeFunction, s3:GetObject + s3:ListBucket on the bucket and logs:FilterLogEvents; preflight
needs sts:GetCallerIdentity, cloudformation:DescribeStacks + ListStackResources + GetTemplate,
lambda:GetAccountSettings + GetFunctionConcurrency, s3files:ListFileSystems, ec2:Describe* and
servicequotas:GetServiceQuota.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from s3files_ops.account import (
    CREDENTIALS_FIX,
    PF_IDENTITY,
    RESERVED_CONCURRENCY,
    PreflightClients,
    resolve_target,
)
from s3files_ops.checklist import Clock, connect_fix, print_checklist, skip, stderr_progress
from s3files_ops.infra import (
    AVAILABLE,
    FUNCTION_NETWORK,
    FUNCTION_OUTPUTS,
    SECURITY_GROUPS,
    check_function_network,
    check_security_groups,
    read_outputs,
    wait_available,
)
from s3files_ops.params import REPO, ConfigError, parse_overrides, read_samconfig
from s3files_ops.preflight import Request, run_preflight
from s3files_ops.probe import (
    EXPORT,
    LOGS,
    READER,
    WRITER,
    check_export,
    check_reader,
    check_writer,
    make_probe,
    scan_logs,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from botocore.client import BaseClient
    from s3files_ops.checklist import StepResult


@dataclass(frozen=True)
class Clients:
    cloudformation: BaseClient
    s3files: BaseClient
    ec2: BaseClient
    lambda_: BaseClient
    s3: BaseClient
    logs: BaseClient

    @classmethod
    def from_session(cls, session: boto3.Session) -> Clients:
        # Invoke can run up to the 15-minute function limit; mount retries are ours, not botocore's.
        invoke_config = Config(read_timeout=910, retries={"mode": "standard", "max_attempts": 1})
        return cls(
            cloudformation=session.client("cloudformation"),
            s3files=session.client("s3files"),
            ec2=session.client("ec2"),
            lambda_=session.client("lambda", config=invoke_config),
            s3=session.client("s3"),
            logs=session.client("logs"),
        )


def run_verify(
    clients: Clients,
    stack: str,
    clock: Clock,
    *,
    wait_seconds: float = 600,
    export_wait_seconds: float = 180,
    invoke_attempts: int = 6,
    progress: Callable[[str], None] = stderr_progress,
) -> list[StepResult]:
    """Run the post-deploy checklist in order, skipping steps a failure makes meaningless."""
    started = clock.now()
    outputs_step = read_outputs(clients.cloudformation, stack)
    if not outputs_step.ok:
        later = (AVAILABLE, SECURITY_GROUPS, FUNCTION_NETWORK, WRITER, READER, EXPORT, LOGS)
        return [outputs_step, *(skip(name, "no stack outputs") for name in later)]
    out: dict[str, str] = outputs_step.data
    functions = [out[key] for key in FUNCTION_OUTPUTS]
    available = wait_available(clients.s3files, out["FileSystemId"], clock, wait_seconds, progress=progress)
    targets = available.data or []
    results = [
        outputs_step,
        available,
        check_security_groups(
            clients.ec2, out["FunctionSecurityGroupId"], out["MountTargetSecurityGroupId"], targets
        ),
        network := check_function_network(
            clients.lambda_,
            clients.ec2,
            functions,
            out["AccessPointArn"],
            out["FunctionSecurityGroupId"],
            targets,
        ),
    ]
    probe = make_probe(started)
    retry = {"attempts": invoke_attempts, "progress": progress}
    if not available.ok:
        results += [skip(n, "file system not available") for n in (WRITER, READER, EXPORT)]
    elif not (writer := check_writer(clients.lambda_, out["WriterFunctionName"], probe, clock, **retry)).ok:
        results += [writer, skip(READER, "writer failed"), skip(EXPORT, "writer failed")]
    else:
        results += [
            writer,
            check_reader(clients.lambda_, out["ReaderFunctionName"], writer.data, probe, clock, **retry),
            check_export(
                clients.s3,
                out["CommittedFilesS3Prefix"],
                writer.data,
                probe,
                clock,
                export_wait_seconds,
                progress=progress,
            ),
        ]
    configs = network.data or {}
    groups = [
        configs.get(fn, {}).get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{fn}"
        for fn in functions
    ]
    results.append(scan_logs(clients.logs, groups, int(started * 1000)))
    return results


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--region", help="AWS Region (default: the profile's or AWS_REGION)")
    common.add_argument("--profile", help="AWS named profile")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", parents=[common], help="check a deployed stack (default command)")
    verify.add_argument("--stack", required=True, help="CloudFormation stack name")
    verify.add_argument(
        "--wait-seconds", type=float, default=600, help="max wait for available (default 600)"
    )
    verify.add_argument(
        "--export-wait-seconds", type=float, default=180, help="max wait for the S3 export (default 180)"
    )
    verify.add_argument("--invoke-attempts", type=int, default=6, help="tries per invoke on mount timeouts")
    preflight = commands.add_parser(
        "preflight", parents=[common], help="check the account, Region and network before deploying"
    )
    commands.add_parser("credentials", parents=[common], help="check that credentials and a Region are found")
    preflight.add_argument("--config-env", default="default", help="samconfig.toml environment (default)")
    preflight.add_argument("--config-file", type=Path, default=REPO / "samconfig.toml")
    preflight.add_argument("--template-file", type=Path, default=REPO / "template.yaml")
    preflight.add_argument("--stack-name", help="default: stack_name of the samconfig.toml environment")
    preflight.add_argument(
        "--parameter-overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="what-if values on top of samconfig.toml's parameter_overrides (sam deploy's syntax)",
    )
    preflight.add_argument(
        "--allow-replace",
        default="",
        metavar="LOGICAL_ID[,..]",
        help="resources this deploy may replace on purpose (a WARN, not a FAIL); see docs/deploy.md",
    )
    preflight.add_argument("--vpc-id", help="same as --parameter-overrides VpcId=..")
    preflight.add_argument("--subnet-ids", help="same as --parameter-overrides SubnetIds=a,b")
    return parser


def preflight(args: argparse.Namespace, clients: PreflightClients | None = None) -> int:
    """Check what `sam deploy --config-env ENV` is about to do; print the parameters judged, then the
    checklist.
    """
    try:
        config = read_samconfig(args.config_file, args.config_env)
        command_line = parse_overrides(args.parameter_overrides, "--parameter-overrides")
        for name, value in (("VpcId", args.vpc_id), ("SubnetIds", args.subnet_ids)):
            if value is not None:
                command_line[name] = value.replace(" ", "")
        allowed = frozenset(name for name in args.allow_replace.replace(" ", "").split(",") if name)
        request = Request(
            args.template_file, config, command_line, args.stack_name or config.stack_name, allowed
        )
        target = resolve_target(args.region, args.profile, config)
        if clients is None and target.session is not None and not target.problems:
            clients = PreflightClients.from_session(target.session)
        results, params = run_preflight(clients, target, request)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shown = [RESERVED_CONCURRENCY, "VpcId", *(["SubnetIds"] if params.values.get("VpcId") else [])]
    values = [
        f"{n}={params.values[n] or '(empty)'} ({params.sources[n]})" for n in shown if n in params.values
    ]
    print(f"Parameters of stack {request.stack_name or '(no stack_name)'}: {', '.join(values)}")
    if params.ignored:
        print(f"Ignored (not parameters of {args.template_file.name}): {', '.join(params.ignored)}")
    print_checklist(results)
    if any(r.name == PF_IDENTITY and not r.ok for r in results):
        return 2  # no account to deploy to: skipping the preflight would not help
    return 1 if any(not r.ok for r in results) else 0


def credentials(region: str | None, profile: str | None) -> int:
    """0 when boto3 finds credentials and a Region (sam package and sam publish need both), else 2
    with what to do, in make's terms under make (`make publish REGION=..`)."""
    try:
        session = boto3.Session(region_name=region, profile_name=profile)
    except BotoCoreError as exc:
        print(f"error: {exc}; {CREDENTIALS_FIX}", file=sys.stderr)
        return 2
    problems = []
    if session.get_credentials() is None:
        problems.append(f"no AWS credentials found: {CREDENTIALS_FIX}")
    if not session.region_name:
        where = "REGION=eu-west-1" if os.environ.get("MAKELEVEL") else "--region eu-west-1"
        problems.append(f"no AWS Region set: pass {where}, or export AWS_DEFAULT_REGION=eu-west-1")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 2 if problems else 0


def main(
    argv: Sequence[str] | None = None,
    *,
    clients: Clients | None = None,
    clock: Clock | None = None,
    preflight_clients: PreflightClients | None = None,
) -> int:
    """CLI entry point: 0 all passed, 1 a step failed, 2 no usable AWS configuration (or bad arguments).

    ``clients``, ``clock`` and ``preflight_clients`` are injected by tests.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in ("verify", "preflight", "credentials", "-h", "--help"):
        args_list.insert(0, "verify")
    args = _parser().parse_args(args_list)
    if args.command == "preflight":
        return preflight(args, preflight_clients)
    if args.command == "credentials":
        return credentials(args.region, args.profile)
    try:
        clients = clients or Clients.from_session(
            boto3.Session(region_name=args.region, profile_name=args.profile)
        )
    except BotoCoreError as exc:
        print(f"error: {exc}; {connect_fix()}", file=sys.stderr)
        return 2
    results = run_verify(
        clients,
        args.stack,
        clock or Clock(),
        wait_seconds=args.wait_seconds,
        export_wait_seconds=args.export_wait_seconds,
        invoke_attempts=args.invoke_attempts,
    )
    print_checklist(results)
    # A stack deployed before the dashboard existed has no such output.
    if url := (results[0].data or {}).get("DashboardUrl"):
        print(f"Dashboard: {url}")
    return 1 if any(not r.ok for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
