"""scripts/stack_ops.py: the stack policy each deploy sets (moto keeps it), what a delete keeps, and a
delete followed past sam delete's waiter (Stubber: each status CloudFormation goes through)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber
from s3files_ops.lifecycle import policy_body, protected, wait_deleted
from s3files_ops.params import REPO, load_template
from stack_ops import main

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from verify_fakes import FakeClock

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/app-dev/0123"
PROTECTED_TYPES = {
    "AWS::S3::Bucket",
    "AWS::S3Files::FileSystem",
    "AWS::S3Files::AccessPoint",
    "AWS::S3Files::MountTarget",
    "AWS::EC2::SecurityGroup",
}


def test_the_policy_protects_the_storage_and_the_security_groups_of_template_yaml() -> None:
    resources = load_template(REPO / "template.yaml")["Resources"]
    expected = {name for name, r in resources.items() if r["Type"] in PROTECTED_TYPES}
    assert set(protected()) == expected
    statements = json.loads(policy_body())["Statement"]
    assert statements[0] == {"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"}
    assert statements[1]["Action"] == ["Update:Replace", "Update:Delete"]


def test_allowed_ids_are_lifted_from_the_deny_only() -> None:
    assert "AccessPoint" not in protected(frozenset({"AccessPoint"}))
    assert "FileSystem" in protected(frozenset({"AccessPoint"}))
    everything = frozenset(protected())
    assert json.loads(policy_body(everything))["Statement"] == [json.loads(policy_body())["Statement"][0]]


@pytest.fixture
def cloudformation(aws: None) -> Any:
    return boto3.client("cloudformation", region_name="us-east-1")


def _create(cloudformation: Any, outputs: dict[str, str] | None = None) -> None:
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {k: {"Value": v} for k, v in (outputs or {}).items()},
    }
    cloudformation.create_stack(StackName="app-dev", TemplateBody=json.dumps(template))


def _main(app: Path, cloudformation: Any, *argv: str, clock: FakeClock | None = None) -> int:
    files = ["--config-file", str(app / "samconfig.toml")]
    return main([*argv, *files], cloudformation=cloudformation, clock=clock)


def test_policy_is_set_on_the_stack_and_lifted_only_where_asked(
    app: Path, cloudformation: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _create(cloudformation)
    assert _main(app, cloudformation, "policy", "--allow-replace", "AccessPoint") == 0
    assert "lifted for this deploy: AccessPoint" in capsys.readouterr().out
    body = json.loads(cloudformation.get_stack_policy(StackName="app-dev")["StackPolicyBody"])
    assert "LogicalResourceId/AccessPoint" not in body["Statement"][1]["Resource"]
    assert _main(app, cloudformation, "policy") == 0  # what make deploy does after sam deploy
    out = capsys.readouterr().out
    assert "app-dev: stack policy denies Update:Replace and Update:Delete of DataBucket, FileSystem" in out
    assert json.loads(cloudformation.get_stack_policy(StackName="app-dev")["StackPolicyBody"]) == json.loads(
        policy_body()
    )


def test_policy_waits_for_the_first_deploy(
    app: Path, cloudformation: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main(app, cloudformation, "policy") == 0
    assert "app-dev: no stack yet; the stack policy is set after the first deploy" in capsys.readouterr().out


def test_policy_refuses_an_id_it_does_not_protect(
    app: Path, cloudformation: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _create(cloudformation)
    assert _main(app, cloudformation, "policy", "--allow-replace", "Vpc") == 2
    assert "--allow-replace Vpc: not protected by stack-policy.json" in capsys.readouterr().err


def test_delete_plan_names_what_is_kept_and_what_it_waits_for(
    app: Path, cloudformation: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/app-dev-DeadLetterQueue-ABC"
    _create(cloudformation, {"BucketName": "app-dev-databucket-xyz", "DeadLetterQueueUrl": queue})
    assert _main(app, cloudformation, "delete-plan") == 0
    out = capsys.readouterr().out
    assert "data bucket app-dev-databucket-xyz" in out
    assert f"dead-letter queue {queue}" in out
    assert "25-40 minutes" in out and "PendingExports" in out


def test_wait_delete_of_a_deleted_stack_is_done(
    app: Path, cloudformation: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _create(cloudformation)
    cloudformation.delete_stack(StackName="app-dev")
    assert _main(app, cloudformation, "wait-delete") == 0
    assert "app-dev: deleted." in capsys.readouterr().err


# ---------------------------------------------------------------- following a delete (Stubber)


@pytest.fixture
def stub() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _status(stubber: Stubber, status: str, name: str = STACK_ID) -> None:
    stack = {"StackName": "app-dev", "StackId": STACK_ID, "CreationTime": "2026-12-01T00:00:00Z"}
    stubber.add_response(
        "describe_stacks", {"Stacks": [stack | {"StackStatus": status}]}, {"StackName": name}
    )


def _resources(stubber: Stubber, stack: str, *rows: tuple[str, str, str, str]) -> None:
    summaries = [
        {
            "LogicalResourceId": logical,
            "PhysicalResourceId": physical,
            "ResourceType": kind,
            "ResourceStatus": status,
            "LastUpdatedTimestamp": "2026-12-01T00:00:00Z",
        }
        | (
            {"ResourceStatusReason": "Resource handler returned message: pending exports"}
            if "FAILED" in status
            else {}
        )
        for logical, physical, kind, status in rows
    ]
    stubber.add_response("list_stack_resources", {"StackResourceSummaries": summaries}, {"StackName": stack})


def test_a_delete_is_followed_past_the_waiter_with_progress(
    stub: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = stub
    lines: list[str] = []
    _status(stubber, "DELETE_IN_PROGRESS", "app-dev")
    _resources(
        stubber, STACK_ID, ("FunctionSecurityGroup", "sg-1", "AWS::EC2::SecurityGroup", "DELETE_IN_PROGRESS")
    )
    _status(stubber, "DELETE_IN_PROGRESS")
    _resources(stubber, STACK_ID, ("PrivateSubnetA", "subnet-1", "AWS::EC2::Subnet", "DELETE_IN_PROGRESS"))
    _status(stubber, "DELETE_COMPLETE")
    assert wait_deleted(client, "app-dev", clock, lines.append, interval=600) == 0
    assert (
        lines[0]
        == "app-dev: DELETE_IN_PROGRESS for 0 min; deleting FunctionSecurityGroup (AWS::EC2::SecurityGroup)"
    )
    assert lines[1] == "app-dev: DELETE_IN_PROGRESS for 10 min; deleting PrivateSubnetA (AWS::EC2::Subnet)"
    assert lines[2].startswith("app-dev: deleted (followed for 20 min).")
    assert clock.sleeps == [600, 600]


def test_a_refused_file_system_delete_is_explained(stub: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stubber = stub
    lines: list[str] = []
    nested = "arn:aws:cloudformation:us-east-1:123456789012:stack/app-dev-Functions/0456"
    _status(stubber, "DELETE_FAILED", "app-dev")
    _resources(
        stubber,
        STACK_ID,
        ("FileSystem", "fs-1", "AWS::S3Files::FileSystem", "DELETE_FAILED"),
        ("Functions", nested, "AWS::CloudFormation::Stack", "DELETE_FAILED"),
        ("DataBucket", "bucket", "AWS::S3::Bucket", "DELETE_SKIPPED"),
    )
    _resources(stubber, nested, ("FunctionSecurityGroup", "sg-1", "AWS::EC2::SecurityGroup", "DELETE_FAILED"))
    assert wait_deleted(client, "app-dev", clock, lines.append, again="make delete ENV=prod") == 1
    assert lines[0] == "app-dev: DELETE_FAILED. What CloudFormation could not delete:"
    assert lines[1].startswith("  - FileSystem (AWS::S3Files::FileSystem): Resource handler returned message")
    assert "exports to S3 are pending" in lines[1] and "PendingExports" in lines[1]
    assert lines[2].startswith("  - FunctionSecurityGroup (AWS::EC2::SecurityGroup)")
    assert "network interfaces" in lines[2]
    assert lines[3].startswith("Run `make delete ENV=prod` again")
    assert clock.sleeps == []


def test_a_delete_still_running_after_the_limit_says_it_goes_on(
    stub: tuple[Any, Stubber], clock: FakeClock
) -> None:
    client, stubber = stub
    lines: list[str] = []
    _status(stubber, "DELETE_IN_PROGRESS", "app-dev")
    _resources(stubber, STACK_ID)
    _status(stubber, "DELETE_IN_PROGRESS")
    assert wait_deleted(client, "app-dev", clock, lines.append, max_wait=60, interval=60) == 2
    assert lines[0] == "app-dev: DELETE_IN_PROGRESS for 0 min; deleting the rest"
    assert lines[1].startswith("app-dev is still DELETE_IN_PROGRESS after 1 min; CloudFormation goes on.")
    assert STACK_ID in lines[1]


def test_a_stack_that_is_not_being_deleted_is_said(stub: tuple[Any, Stubber], clock: FakeClock) -> None:
    client, stubber = stub
    lines: list[str] = []
    _status(stubber, "UPDATE_COMPLETE", "app-dev")
    assert wait_deleted(client, "app-dev", clock, lines.append) == 1
    assert lines == [
        "app-dev is UPDATE_COMPLETE: no delete is running (declined, or not started); run `make delete`."
    ]
