"""The stack after its first deploy: the stack policy every deploy applies, and a delete followed to
its end.

Stack policy (infra/stack-policy.json): denies Update:Replace and Update:Delete on the data bucket, the
file system, the access point, the mount targets and the security groups. sam deploy has no stack
policy option and its change sets take no temporary policy (ExecuteChangeSet has no
StackPolicyDuringUpdate), so ``make deploy`` sets the policy before sam deploy (without the resources
given to --allow-replace) and sets the full policy again afterwards, whatever sam deploy did.

Delete: sam delete polls for about 60 minutes (30 s x 120) and then reports a failure while
CloudFormation goes on; VPC Lambda network interfaces alone take 25-40 minutes to be released
(cloudformation-coverage-roadmap#392, aws/aws-sam-cli#5084). ``wait_deleted`` follows the stack from
there with progress and explains a refused delete.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from s3files_ops.checklist import error_text
from s3files_ops.params import REPO

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.client import BaseClient

    from s3files_ops.checklist import Clock

POLICY_FILE = REPO / "infra" / "stack-policy.json"
DELETE_WAITS = (
    "A delete waits for Lambda to release the functions' VPC network interfaces before the security "
    "groups and subnets can go: typically 25-40 minutes. The file system cannot be deleted while exports "
    "to S3 are pending (CloudWatch PendingExports, about a minute after the last write)."
)
# Why CloudFormation waits on, or fails to delete, a resource of this type, and what to do.
WHY: dict[str, str] = {
    "AWS::S3Files::FileSystem": (
        "S3 Files refuses to delete a file system while exports to S3 are pending: wait until CloudWatch "
        "PendingExports (AWS/S3Files, FileSystemId) is 0, about a minute after the last write (longer "
        "with a backlog), then delete again"
    ),
    "AWS::EC2::SecurityGroup": (
        "Lambda's VPC network interfaces still use it; they are released 25-40 minutes after the "
        "functions are deleted: wait, then delete again"
    ),
    "AWS::EC2::Subnet": (
        "Lambda's VPC network interfaces are still in it (released 25-40 minutes after the functions "
        "are deleted): wait, then delete again"
    ),
}


def policy_body(allowed: frozenset[str] = frozenset()) -> str:
    """infra/stack-policy.json, without the logical ids in ``allowed`` (dropped from the Deny)."""
    policy: dict[str, Any] = json.loads(POLICY_FILE.read_text())
    for statement in policy["Statement"]:
        if statement["Effect"] == "Deny":
            statement["Resource"] = [r for r in statement["Resource"] if r.split("/", 1)[1] not in allowed]
    policy["Statement"] = [s for s in policy["Statement"] if s["Resource"]]
    return json.dumps(policy)


def protected(allowed: frozenset[str] = frozenset()) -> list[str]:
    """The logical ids the policy (without ``allowed``) protects from replacement and deletion."""
    statements = json.loads(policy_body(allowed))["Statement"]
    return [r.split("/", 1)[1] for s in statements if s["Effect"] == "Deny" for r in s["Resource"]]


def apply_stack_policy(cloudformation: BaseClient, stack: str, allowed: frozenset[str] = frozenset()) -> str:
    """Set the stack policy on an existing stack; the line to print. A stack that does not exist yet
    gets it after its first deploy (the same call then)."""
    unknown = sorted(allowed - set(protected()))
    if unknown:
        raise ValueError(
            f"--allow-replace {','.join(unknown)}: not protected by {POLICY_FILE.name} "
            f"(it protects {', '.join(protected())})"
        )
    try:
        cloudformation.set_stack_policy(StackName=stack, StackPolicyBody=policy_body(allowed))
    except ClientError as exc:
        if "does not exist" in error_text(exc):
            return f"{stack}: no stack yet; the stack policy is set after the first deploy"
        raise
    kept = ", ".join(protected(allowed)) or "nothing"
    lifted = f"; lifted for this deploy: {', '.join(sorted(allowed))}" if allowed else ""
    return f"{stack}: stack policy denies Update:Replace and Update:Delete of {kept}{lifted}"


def delete_plan(cloudformation: BaseClient, stack: str) -> list[str]:
    """What a delete keeps and what it waits for, from the stack's outputs (read before it goes)."""
    try:
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
        }
    except ClientError as exc:
        if "does not exist" in error_text(exc):
            return [f"{stack} does not exist: nothing to delete."]
        raise
    bucket = outputs.get("BucketName", "(stack output BucketName)")
    queue = outputs.get("DeadLetterQueueUrl", "(stack output DeadLetterQueueUrl)")
    kept = [
        f"data bucket {bucket} (its objects are every committed file: empty and delete it yourself when no "
        "longer needed)",
        f"dead-letter queue {queue} (the failed asynchronous events: read or redrive them, then "
        "`aws sqs delete-queue --queue-url <url>`)",
    ]
    return [f"Deleting {stack}. Kept (DeletionPolicy: Retain):", *(f"  - {k}" for k in kept), DELETE_WAITS]


def _failures(cloudformation: BaseClient, stack: str) -> list[str]:
    """Each DELETE_FAILED resource of the stack and its nested stacks, with the reason and what to do."""
    lines: list[str] = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        for resource in page["StackResourceSummaries"]:
            if resource["ResourceStatus"] != "DELETE_FAILED":
                continue
            kind = resource["ResourceType"]
            if kind == "AWS::CloudFormation::Stack" and resource.get("PhysicalResourceId"):
                lines += _failures(cloudformation, resource["PhysicalResourceId"])
                continue
            reason = resource.get("ResourceStatusReason", "no reason given")
            why = WHY.get(kind, "see the reason; fix it, then delete again")
            lines.append(f"{resource['LogicalResourceId']} ({kind}): {reason}. {why}")
    return lines


def _in_progress(cloudformation: BaseClient, stack: str) -> list[str]:
    return [
        f"{r['LogicalResourceId']} ({r['ResourceType']})"
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
        for r in page["StackResourceSummaries"]
        if r["ResourceStatus"] == "DELETE_IN_PROGRESS"
    ]


def wait_deleted(
    cloudformation: BaseClient,
    stack: str,
    clock: Clock,
    progress: Callable[[str], None],
    max_wait: float = 7200,
    interval: float = 60,
    again: str = "make delete",
) -> int:
    """Follow a delete to its end: 0 deleted, 1 failed (each refused resource explained) or not being
    deleted, 2 still deleting after ``max_wait`` seconds (CloudFormation goes on)."""
    try:
        found = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in error_text(exc):
            progress(f"{stack}: deleted.")
            return 0
        raise
    stack_id, started = found["StackId"], clock.now()
    while True:
        status = found["StackStatus"]
        minutes = int((clock.now() - started) // 60)
        if status == "DELETE_COMPLETE":
            progress(
                f"{stack}: deleted (followed for {minutes} min). The bucket and the dead-letter queue remain."
            )
            return 0
        if status == "DELETE_FAILED":
            progress(f"{stack}: DELETE_FAILED. What CloudFormation could not delete:")
            for line in _failures(cloudformation, stack_id) or ["(no resource reports DELETE_FAILED)"]:
                progress(f"  - {line}")
            progress(f"Run `{again}` again once that is resolved: CloudFormation retries only what is left.")
            return 1
        if status != "DELETE_IN_PROGRESS":
            progress(f"{stack} is {status}: no delete is running (declined, or not started); run `{again}`.")
            return 1
        if clock.now() - started >= max_wait:
            progress(
                f"{stack} is still DELETE_IN_PROGRESS after {minutes} min; CloudFormation goes on. Follow it "
                f"with `aws cloudformation describe-stacks --stack-name {stack_id}`, or run `{again}` again."
            )
            return 2
        waiting = _in_progress(cloudformation, stack_id)
        progress(
            f"{stack}: DELETE_IN_PROGRESS for {minutes} min; deleting {', '.join(waiting) or 'the rest'}"
        )
        clock.sleep(interval)
        found = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
