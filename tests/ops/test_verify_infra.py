"""Infrastructure steps of verify.py: stack outputs, resource status, security groups, AZ coverage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber
from s3files_ops.checklist import Clock, Status
from s3files_ops.infra import check_function_network, check_security_groups, read_outputs, wait_available
from verify_fakes import (
    AP_ARN,
    FS_ID,
    both_targets,
    create_stack,
    function_config,
    mount_target,
    nfs_rule,
    stub_status,
)

if TYPE_CHECKING:
    from verify_fakes import FakeClock, Net

# Any functions: check_function_network checks the names it is given (verify passes the template's).
FUNCTIONS = ("writer", "reader", "janitor")


def _clock(fake: FakeClock) -> Clock:
    return Clock(now=fake.now, sleep=fake.sleep)


def test_outputs_pass_with_every_output(net: Net) -> None:
    expected = create_stack(net)
    result = read_outputs(boto3.client("cloudformation", region_name="us-east-1"), "app")
    assert result.status is Status.PASS
    assert result.data == expected


def test_outputs_missing_are_named(net: Net) -> None:
    create_stack(net, drop=("AccessPointArn", "WriterFunctionName"))
    result = read_outputs(boto3.client("cloudformation", region_name="us-east-1"), "app")
    assert result.status is Status.FAIL
    assert "AccessPointArn, WriterFunctionName" in result.detail
    assert "Outputs" in result.remediation


def test_outputs_unknown_stack_names_it_and_the_options(aws: None) -> None:
    result = read_outputs(boto3.client("cloudformation", region_name="us-east-1"), "nope")
    assert result.status is Status.FAIL
    assert "nope" in result.detail
    assert "--region" in result.remediation


def test_wait_passes_once_everything_is_available(
    s3files: tuple[Any, Stubber], net: Net, clock: FakeClock
) -> None:
    client, stub = s3files
    stub_status(stub, "creating", both_targets(net, "creating"))
    stub_status(stub, "available", both_targets(net, "creating"))
    stub_status(stub, "available", both_targets(net))
    lines: list[str] = []
    result = wait_available(client, FS_ID, _clock(clock), 600, poll_seconds=15, progress=lines.append)
    assert result.status is Status.PASS, result.detail
    assert clock.sleeps == [15, 15]
    assert len(lines) == 2
    assert "creating" in lines[0]
    assert [t["subnetId"] for t in result.data] == [net.subnet_a, net.subnet_b]


def test_wait_times_out_on_a_file_system_stuck_creating_with_access_denied(
    s3files: tuple[Any, Stubber], net: Net, clock: FakeClock
) -> None:
    client, stub = s3files
    message = "Access denied when assuming role arn:aws:iam::123456789012:role/app-FileSystemRole"
    for _ in range(3):
        stub_status(stub, "creating", [], message)
    result = wait_available(client, FS_ID, _clock(clock), 30, poll_seconds=15, progress=lambda _: None)
    assert result.status is Status.FAIL
    assert "after 30s" in result.detail
    assert "creating" in result.detail
    assert message in result.detail
    assert "FileSystemRole" in result.remediation
    assert "elasticfilesystem.amazonaws.com" in result.remediation
    assert sum(clock.sleeps) == 30


def test_wait_fails_at_once_on_an_error_status_with_its_message(
    s3files: tuple[Any, Stubber], net: Net, clock: FakeClock
) -> None:
    client, stub = s3files
    stub_status(stub, "error", [], "AccessDenied: role cannot list the bucket")
    result = wait_available(client, FS_ID, _clock(clock), 600, progress=lambda _: None)
    assert result.status is Status.FAIL
    assert "error: AccessDenied: role cannot list the bucket" in result.detail
    assert "FileSystemRole" in result.remediation
    assert clock.sleeps == []


def test_wait_fails_on_a_mount_target_in_error(
    s3files: tuple[Any, Stubber], net: Net, clock: FakeClock
) -> None:
    client, stub = s3files
    broken = mount_target(net.subnet_b, net.az_b, "error", message="subnet has no free IP addresses")
    stub_status(stub, "available", [both_targets(net)[0], broken])
    result = wait_available(client, FS_ID, _clock(clock), 600, progress=lambda _: None)
    assert result.status is Status.FAIL
    assert broken["mountTargetId"] in result.detail
    assert "no free IP addresses" in result.detail
    assert "MountTargetB" in result.remediation
    assert [t["status"] for t in result.data] == ["available", "error"]


def test_wait_timeout_on_creating_mount_targets_suggests_a_longer_wait(
    s3files: tuple[Any, Stubber], net: Net, clock: FakeClock
) -> None:
    client, stub = s3files
    stub_status(stub, "available", both_targets(net, "creating"))
    stub_status(stub, "available", both_targets(net, "creating"))
    result = wait_available(client, FS_ID, _clock(clock), 10, poll_seconds=15, progress=lambda _: None)
    assert result.status is Status.FAIL
    assert "3-5 minutes" in result.remediation
    assert "--wait-seconds" in result.remediation
    assert clock.sleeps == [10]


def test_security_groups_pass_for_template_rules(ec2: Any, net: Net) -> None:
    result = check_security_groups(ec2, net.function_sg, net.mount_target_sg, both_targets(net))
    assert result.status is Status.PASS, result.detail


def test_security_groups_fail_without_2049_ingress(ec2: Any, net: Net) -> None:
    ec2.revoke_security_group_ingress(GroupId=net.mount_target_sg, IpPermissions=[nfs_rule(net.function_sg)])
    ec2.authorize_security_group_ingress(
        GroupId=net.mount_target_sg, IpPermissions=[nfs_rule(net.function_sg, port=443)]
    )
    result = check_security_groups(ec2, net.function_sg, net.mount_target_sg, both_targets(net))
    assert result.status is Status.FAIL
    assert f"{net.mount_target_sg} has no ingress TCP 2049 from {net.function_sg}" in result.detail
    assert "MountTargetSecurityGroup" in result.remediation
    assert f"TCP 2049, source group {net.function_sg}" in result.remediation
    assert "egress" not in result.detail


def test_security_groups_fail_without_2049_egress(ec2: Any, net: Net) -> None:
    ec2.revoke_security_group_egress(GroupId=net.function_sg, IpPermissions=[nfs_rule(net.mount_target_sg)])
    result = check_security_groups(ec2, net.function_sg, net.mount_target_sg, both_targets(net))
    assert result.status is Status.FAIL
    assert "no egress TCP 2049" in result.detail
    assert f"FunctionSecurityGroup ({net.function_sg}) an egress rule" in result.remediation


@pytest.mark.parametrize(("cidr", "status"), [("10.0.0.0/16", Status.PASS), ("10.0.1.0/24", Status.FAIL)])
def test_security_group_egress_to_a_cidr_must_cover_every_mount_target(
    ec2: Any, net: Net, cidr: str, status: Status
) -> None:
    ec2.revoke_security_group_egress(GroupId=net.function_sg, IpPermissions=[nfs_rule(net.mount_target_sg)])
    ec2.authorize_security_group_egress(
        GroupId=net.function_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "IpRanges": [{"CidrIp": cidr}]}
        ],
    )
    result = check_security_groups(ec2, net.function_sg, net.mount_target_sg, both_targets(net))
    assert result.status is status


def _stub_configs(stub: Stubber, configs: list[dict[str, Any]]) -> None:
    for config in configs:
        stub.add_response("get_function_configuration", config, {"FunctionName": config["FunctionName"]})


def test_function_network_passes_with_a_mount_target_per_az(
    lam: tuple[Any, Stubber], ec2: Any, net: Net
) -> None:
    client, stub = lam
    _stub_configs(stub, [function_config(fn, net) for fn in FUNCTIONS])
    result = check_function_network(client, ec2, FUNCTIONS, AP_ARN, net.function_sg, both_targets(net))
    assert result.status is Status.PASS, result.detail
    assert result.data["writer"]["LoggingConfig"]["LogGroup"] == "/aws/lambda/stack/writer"


def test_function_network_fails_when_a_function_az_has_no_mount_target(
    lam: tuple[Any, Stubber], ec2: Any, net: Net
) -> None:
    client, stub = lam
    _stub_configs(stub, [function_config(fn, net) for fn in FUNCTIONS])
    only_a = [mount_target(net.subnet_a, net.az_a)]
    result = check_function_network(client, ec2, FUNCTIONS, AP_ARN, net.function_sg, only_a)
    assert result.status is Status.FAIL
    assert f"no mount target in the AZ of function subnet(s) {net.subnet_b} (us-east-1b/{net.az_b})" in (
        result.detail
    )
    assert net.subnet_a not in result.detail
    assert "AWS::S3Files::MountTarget" in result.remediation


def test_function_network_uses_the_mount_target_subnet_az_when_the_az_id_is_absent(
    lam: tuple[Any, Stubber], ec2: Any, net: Net
) -> None:
    client, stub = lam
    _stub_configs(stub, [function_config(fn, net) for fn in FUNCTIONS])
    targets = [{k: v for k, v in t.items() if k != "availabilityZoneId"} for t in both_targets(net)]
    result = check_function_network(client, ec2, FUNCTIONS, AP_ARN, net.function_sg, targets)
    assert result.status is Status.PASS, result.detail


def test_function_network_fails_on_wrong_access_point_and_missing_vpc(
    lam: tuple[Any, Stubber], ec2: Any, net: Net
) -> None:
    client, stub = lam
    no_vpc = function_config("reader", net) | {"VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []}}
    other_ap = function_config("janitor", net, ap_arn=AP_ARN.replace("fsap-0", "fsap-f"))
    _stub_configs(stub, [function_config("writer", net), no_vpc, other_ap])
    result = check_function_network(client, ec2, FUNCTIONS, AP_ARN, net.function_sg, both_targets(net))
    assert result.status is Status.FAIL
    assert "reader has no VpcConfig" in result.detail
    assert "janitor mounts" in result.detail
    assert "writer" not in result.detail
    assert "VpcConfig (SubnetIds, SecurityGroupIds)" in result.remediation
    assert "FileSystemConfigs[0].Arn" in result.remediation


def test_an_api_error_names_the_iam_action_to_grant(net: Net) -> None:
    client = boto3.client("ec2", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("describe_security_groups", "UnauthorizedOperation", "not authorized", 403)
        result = check_security_groups(client, net.function_sg, net.mount_target_sg, both_targets(net))
    assert result.status is Status.FAIL
    assert result.detail == "DescribeSecurityGroups failed: UnauthorizedOperation: not authorized"
    assert "allow ec2:DescribeSecurityGroups" in result.remediation
