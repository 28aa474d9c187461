"""Infrastructure checks after a deploy: stack outputs, resource status, security groups, AZ coverage."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from template_functions import functions

from s3files_ops.checklist import (
    Clock,
    Status,
    StepFailure,
    StepResult,
    error_text,
    option,
    stack_options,
    stderr_progress,
    step,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from botocore.client import BaseClient

NFS_PORT = 2049
# Every function of the stack (functions/template.yaml's): each is checked for its network and mount,
# and its logs are scanned.
FUNCTION_OUTPUTS = tuple(f"{function.logical_id}Name" for function in functions().values())
REQUIRED_OUTPUTS = (
    "FileSystemId",
    "AccessPointArn",
    "CommittedFilesS3Prefix",
    *FUNCTION_OUTPUTS,
    "FunctionSecurityGroupId",
    "MountTargetSecurityGroupId",
)
BROKEN_STATES = frozenset({"error", "misconfigured", "deleting", "deleted"})

OUTPUTS = "Stack outputs"
AVAILABLE = "File system and mount targets available"
SECURITY_GROUPS = "Security groups allow NFS (TCP 2049)"
FUNCTION_NETWORK = "Functions: VPC, access point, mount target per AZ"
ROLE_FIX = (
    "check FileSystemRole: trust elasticfilesystem.amazonaws.com with aws:SourceAccount and aws:SourceArn "
    "arn:<partition>:s3files:<region>:<account>:file-system/*; s3:ListBucket+s3:ListBucketVersions on the "
    "bucket; s3:GetObject*/PutObject*/DeleteObject/DeleteObjectTagging/AbortMultipartUpload/List* on "
    "bucket/*; the EventBridge rule actions on rule/DO-NOT-DELETE-S3-Files*; KMS use on KmsKeyArn if set; "
    "bucket versioning Enabled"
)
MOUNT_TARGET_FIX = (
    "read the status message and the stack events of MountTargetA/MountTargetB: the subnet needs free IP "
    "addresses, both subnets must be in the file system's VPC, at most 5 security groups per mount target"
)


@step(OUTPUTS)
def read_outputs(cloudformation: BaseClient, stack: str) -> StepResult:
    """PASS with ``data`` = {OutputKey: OutputValue} for a complete stack having every REQUIRED_OUTPUTS."""
    try:
        found = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        raise StepFailure(
            f"cannot describe stack {stack}: {error_text(exc)}",
            f"check {stack_options()} (the identity needs cloudformation:DescribeStacks)",
        ) from exc
    state = found["StackStatus"]
    if not state.endswith("_COMPLETE") or "ROLLBACK" in state or state.startswith("DELETE"):
        raise StepFailure(
            f"stack {stack} is {state}",
            "wait for the deploy to finish, or fix the failed resource named in the stack events; redeploy",
        )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    if missing:
        raise StepFailure(
            f"stack {stack} lacks outputs: {', '.join(missing)}",
            "deploy the current template.yaml, whose Outputs section declares them (make deploy)",
        )
    return StepResult(OUTPUTS, Status.PASS, f"{stack} {state}, {len(outputs)} outputs", data=outputs)


def _mount_targets(s3files: BaseClient, file_system_id: str) -> list[dict[str, Any]]:
    pages = s3files.get_paginator("list_mount_targets").paginate(fileSystemId=file_system_id)
    return [target for page in pages for target in page["mountTargets"]]


@step(AVAILABLE)
def wait_available(
    s3files: BaseClient,
    file_system_id: str,
    clock: Clock,
    wait_seconds: float = 600,
    poll_seconds: float = 15,
    progress: Callable[[str], None] = stderr_progress,
) -> StepResult:
    """Poll until the file system and all its mount targets are ``available``; ``data`` = mount targets.

    Fails at once on error/misconfigured/deleting, and after ``wait_seconds`` while still creating.
    """
    deadline = clock.now() + wait_seconds
    while True:
        fs = s3files.get_file_system(fileSystemId=file_system_id)
        fs_status, fs_message = fs.get("status", "unknown"), fs.get("statusMessage", "")
        targets = _mount_targets(s3files, file_system_id)
        if fs_status in BROKEN_STATES:
            detail = f"file system {file_system_id} is {fs_status}: {fs_message}"
            return StepResult(AVAILABLE, Status.FAIL, detail, ROLE_FIX, data=targets)
        broken = [t for t in targets if t.get("status") in BROKEN_STATES]
        if broken:
            detail = "; ".join(
                f"mount target {t['mountTargetId']} ({t['subnetId']}) is {t['status']}: "
                f"{t.get('statusMessage', '')}"
                for t in broken
            )
            return StepResult(AVAILABLE, Status.FAIL, detail, MOUNT_TARGET_FIX, data=targets)
        summary = ", ".join(f"{t['mountTargetId']} {t.get('status')}" for t in targets) or "none"
        if fs_status == "available" and targets and all(t.get("status") == "available" for t in targets):
            return StepResult(
                AVAILABLE, Status.PASS, f"{file_system_id} available; mount targets: {summary}", data=targets
            )
        remaining = deadline - clock.now()
        if remaining <= 0:
            return StepResult(
                AVAILABLE,
                Status.FAIL,
                f"after {wait_seconds:.0f}s file system {file_system_id} is {fs_status}"
                + (f" ({fs_message})" if fs_message else "")
                + f"; mount targets: {summary}",
                _timeout_fix(fs_status, fs_message, targets),
                data=targets,
            )
        progress(f"  waiting: file system {fs_status}, mount targets: {summary} ({remaining:.0f}s left)")
        clock.sleep(min(poll_seconds, remaining))


def _timeout_fix(fs_status: str, fs_message: str, targets: list[dict[str, Any]]) -> str:
    # A wrong FileSystemRole is not rejected: the file system stays "creating" with access denied.
    if fs_status != "available" and ("denied" in fs_message.lower() or "access" in fs_message.lower()):
        return ROLE_FIX
    if fs_status != "available":
        return f"the file system is still {fs_status}: if this persists, {ROLE_FIX}"
    if not targets:
        return (
            "the file system has no mount targets: deploy MountTargetA/MountTargetB (one per function subnet)"
        )
    return f"mount targets take 3-5 minutes after creation: re-run with {option('--wait-seconds 900')}"


def _allows_nfs(rule: dict[str, Any]) -> bool:
    protocol = rule.get("IpProtocol")
    if protocol == "-1":
        return True
    return protocol in ("tcp", "6") and rule.get("FromPort", 0) <= NFS_PORT <= rule.get("ToPort", 0)


def _references(rule: dict[str, Any], group_id: str) -> bool:
    return any(pair.get("GroupId") == group_id for pair in rule.get("UserIdGroupPairs", []))


@step(SECURITY_GROUPS)
def check_security_groups(
    ec2: BaseClient, function_sg: str, mount_target_sg: str, mount_targets: Sequence[dict[str, Any]]
) -> StepResult:
    """PASS when the mount target SG admits TCP 2049 from the function SG and the function SG lets it out.

    Egress counts when it targets the mount target SG, or CIDRs covering every mount target's IPv4 address.
    """
    groups = {
        g["GroupId"]: g
        for g in ec2.describe_security_groups(GroupIds=sorted({function_sg, mount_target_sg}))[
            "SecurityGroups"
        ]
    }
    problems: list[str] = []
    fixes: list[str] = []
    ingress = [r for r in groups[mount_target_sg].get("IpPermissions", []) if _allows_nfs(r)]
    if not any(_references(r, function_sg) for r in ingress):
        problems.append(f"{mount_target_sg} has no ingress TCP 2049 from {function_sg}")
        fixes.append(
            f"add to MountTargetSecurityGroup ({mount_target_sg}) an ingress rule: TCP 2049, source group "
            f"{function_sg} (FunctionSecurityGroup)"
        )
    egress = [r for r in groups[function_sg].get("IpPermissionsEgress", []) if _allows_nfs(r)]
    networks = [ipaddress.ip_network(ip["CidrIp"]) for r in egress for ip in r.get("IpRanges", [])]
    addresses = [ipaddress.ip_address(t["ipv4Address"]) for t in mount_targets if t.get("ipv4Address")]
    egress_ok = (
        any(_references(r, mount_target_sg) for r in egress)
        or any(net.prefixlen == 0 for net in networks)
        or (bool(addresses) and all(any(a in net for net in networks) for a in addresses))
    )
    if not egress_ok:
        problems.append(f"{function_sg} has no egress TCP 2049 to {mount_target_sg} or the mount target IPs")
        fixes.append(
            f"add to FunctionSecurityGroup ({function_sg}) an egress rule: TCP 2049, destination group "
            f"{mount_target_sg} (MountTargetSecurityGroup)"
        )
    if problems:
        raise StepFailure("; ".join(problems), "; ".join(fixes))
    return StepResult(
        SECURITY_GROUPS,
        Status.PASS,
        f"{function_sg} -> {mount_target_sg} on TCP {NFS_PORT} in both directions",
    )


@step(FUNCTION_NETWORK)
def check_function_network(
    lambda_: BaseClient,
    ec2: BaseClient,
    functions: Sequence[str],
    access_point_arn: str,
    function_sg: str,
    mount_targets: Sequence[dict[str, Any]],
) -> StepResult:
    """PASS when every function is Active, in a VPC with the function SG, mounts the access point, and
    each of its subnets' AZs has a mount target. ``data`` = {function name: configuration}.
    """
    configs = {fn: lambda_.get_function_configuration(FunctionName=fn) for fn in functions}
    problems: list[str] = []
    fixes: list[str] = []
    for fn, cfg in configs.items():
        if cfg.get("State", "Active") != "Active":
            problems.append(
                f"{fn} is {cfg['State']} ({cfg.get('StateReasonCode')}: {cfg.get('StateReason')})"
            )
            fixes.append(
                f"fix the cause in {fn}'s StateReasonCode (e.g. the role needs "
                "AWSLambdaVPCAccessExecutionRole for ENIs, the subnets need free IPs) and redeploy"
            )
        vpc = cfg.get("VpcConfig") or {}
        if not vpc.get("SubnetIds"):
            problems.append(f"{fn} has no VpcConfig")
            fixes.append(f"set VpcConfig (SubnetIds, SecurityGroupIds) on {fn}: S3 Files mounts need a VPC")
        elif function_sg not in vpc.get("SecurityGroupIds", []):
            problems.append(f"{fn} does not use FunctionSecurityGroup {function_sg}")
            fixes.append(f"add FunctionSecurityGroup to {fn}'s VpcConfig.SecurityGroupIds")
        mounted = [c.get("Arn") for c in cfg.get("FileSystemConfigs", [])]
        if mounted != [access_point_arn]:
            problems.append(f"{fn} mounts {mounted or 'nothing'}, not {access_point_arn}")
            fixes.append(f"set {fn}'s FileSystemConfigs[0].Arn to !GetAtt AccessPoint.AccessPointArn")
    function_subnets = sorted(
        {s for cfg in configs.values() for s in (cfg.get("VpcConfig") or {}).get("SubnetIds", [])}
    )
    lookup = sorted(set(function_subnets) | {t["subnetId"] for t in mount_targets})
    subnets = {s["SubnetId"]: s for s in ec2.describe_subnets(SubnetIds=lookup)["Subnets"]} if lookup else {}
    covered = {
        t.get("availabilityZoneId") or subnets[t["subnetId"]]["AvailabilityZoneId"] for t in mount_targets
    }
    uncovered = [
        f"{sid} ({subnets[sid]['AvailabilityZone']}/{subnets[sid]['AvailabilityZoneId']})"
        for sid in function_subnets
        if subnets[sid]["AvailabilityZoneId"] not in covered
    ]
    if uncovered:
        problems.append(f"no mount target in the AZ of function subnet(s) {', '.join(uncovered)}")
        fixes.append(
            "create an AWS::S3Files::MountTarget in each function subnet's AZ (MountTargetA/MountTargetB use "
            "the same SubnetIds as the functions) or remove those subnets from the functions' VpcConfig"
        )
    if problems:
        return StepResult(FUNCTION_NETWORK, Status.FAIL, "; ".join(problems), "; ".join(fixes), data=configs)
    return StepResult(
        FUNCTION_NETWORK,
        Status.PASS,
        f"{len(configs)} functions mount the access point; subnets {', '.join(function_subnets)} all have a "
        "mount target in their AZ",
        data=configs,
    )
