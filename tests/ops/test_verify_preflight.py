"""Preflight for the existing-VPC mode (moto EC2), through check_existing_vpc and the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from s3files_ops.checklist import Status
from s3files_ops.preflight import check_existing_vpc
from verify import main
from verify_fakes import account_settings

if TYPE_CHECKING:
    from pathlib import Path

    from botocore.stub import Stubber
    from s3files_ops.account import PreflightClients
    from verify_fakes import Net


@pytest.fixture
def ready(ec2: Any, net: Net) -> Net:
    """The template's expectations met: DNS on, subnets on a route table with the S3 gateway endpoint."""
    ec2.modify_vpc_attribute(VpcId=net.vpc, EnableDnsHostnames={"Value": True})
    table = ec2.create_route_table(VpcId=net.vpc)["RouteTable"]["RouteTableId"]
    for subnet in (net.subnet_a, net.subnet_b):
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    ec2.create_vpc_endpoint(
        VpcId=net.vpc,
        ServiceName="com.amazonaws.us-east-1.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[table],
    )
    return net


def _statuses(ec2: Any, vpc: str, subnets: list[str]) -> dict[str, Status]:
    return {r.name: r.status for r in check_existing_vpc(ec2, vpc, subnets)}


def test_ready_vpc_passes_every_check(ec2: Any, ready: Net) -> None:
    results = check_existing_vpc(ec2, ready.vpc, [ready.subnet_a, ready.subnet_b])
    assert [r.status for r in results] == [Status.PASS] * 4, [r.detail for r in results]


def test_subnets_in_the_same_az_fail(ec2: Any, ready: Net) -> None:
    twin = ec2.create_subnet(VpcId=ready.vpc, CidrBlock="10.0.3.0/24", AvailabilityZone="us-east-1a")[
        "Subnet"
    ]
    results = {r.name: r for r in check_existing_vpc(ec2, ready.vpc, [ready.subnet_a, twin["SubnetId"]])}
    azs = results["Exactly two subnets in distinct AZs"]
    assert azs.status is Status.FAIL
    assert f"{ready.subnet_a} in us-east-1a, {twin['SubnetId']} in us-east-1a" in azs.detail
    assert "different Availability Zones" in azs.remediation


def test_three_subnets_fail(ec2: Any, ready: Net) -> None:
    third = ec2.create_subnet(VpcId=ready.vpc, CidrBlock="10.0.3.0/24", AvailabilityZone="us-east-1c")[
        "Subnet"
    ]
    statuses = _statuses(ec2, ready.vpc, [ready.subnet_a, ready.subnet_b, third["SubnetId"]])
    assert statuses["Exactly two subnets in distinct AZs"] is Status.FAIL


def test_subnet_of_another_vpc_fails(ec2: Any, ready: Net) -> None:
    other = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    stray = ec2.create_subnet(VpcId=other, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    results = check_existing_vpc(ec2, ready.vpc, [ready.subnet_a, stray["SubnetId"]])
    assert results[0].status is Status.FAIL
    assert f"{stray['SubnetId']} (in {other})" in results[0].detail
    assert [r.status for r in results[1:]] == [Status.SKIP] * 3


def test_unknown_subnet_is_named(ec2: Any, ready: Net) -> None:
    results = check_existing_vpc(ec2, ready.vpc, [ready.subnet_a, "subnet-0000000000000dead"])
    assert results[0].status is Status.FAIL
    assert results[0].detail == "subnets not found in region us-east-1: subnet-0000000000000dead"
    assert f"Name=vpc-id,Values={ready.vpc}" in results[0].remediation


def test_unknown_vpc_is_named(ec2: Any, ready: Net) -> None:
    results = check_existing_vpc(ec2, "vpc-0000000000000dead", [ready.subnet_a, ready.subnet_b])
    assert results[0].status is Status.FAIL
    assert results[0].detail == "VPC vpc-0000000000000dead not found in region us-east-1"


def test_dns_hostnames_off_fails_with_the_command_to_fix_it(ec2: Any, ready: Net) -> None:
    ec2.modify_vpc_attribute(VpcId=ready.vpc, EnableDnsHostnames={"Value": False})
    dns = check_existing_vpc(ec2, ready.vpc, [ready.subnet_a, ready.subnet_b])[2]
    assert dns.status is Status.FAIL
    assert "enableDnsHostnames = false" in dns.detail
    assert "enableDnsSupport" not in dns.detail
    assert f"modify-vpc-attribute --vpc-id {ready.vpc} --enable-dns-hostnames" in dns.remediation


def test_missing_s3_route_only_warns(ec2: Any, net: Net) -> None:
    ec2.modify_vpc_attribute(VpcId=net.vpc, EnableDnsHostnames={"Value": True})
    route = check_existing_vpc(ec2, net.vpc, [net.subnet_a, net.subnet_b])[3]
    assert route.status is Status.WARN
    assert route.ok
    assert net.subnet_a in route.detail
    assert "fall back to the mount" in route.detail
    assert "com.amazonaws.us-east-1.s3" in route.remediation
    assert "DirectS3Read=DISABLED" in route.remediation


def test_nat_route_counts_but_an_internet_gateway_route_does_not(ec2: Any, ready: Net) -> None:
    table = ec2.create_route_table(VpcId=ready.vpc)["RouteTable"]["RouteTableId"]
    association = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [ready.subnet_a]}]
    )["RouteTables"][0]["Associations"][0]["RouteTableAssociationId"]
    ec2.replace_route_table_association(AssociationId=association, RouteTableId=table)
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=ready.vpc)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    assert _statuses(ec2, ready.vpc, [ready.subnet_a, ready.subnet_b])["Route to S3 for direct reads"] is (
        Status.WARN
    )
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
    nat = ec2.create_nat_gateway(SubnetId=ready.subnet_b)["NatGateway"]["NatGatewayId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    assert _statuses(ec2, ready.vpc, [ready.subnet_a, ready.subnet_b])["Route to S3 for direct reads"] is (
        Status.PASS
    )


def test_vpc_id_without_subnet_ids_fails_with_the_parameter_to_add(ec2: Any, ready: Net) -> None:
    results = check_existing_vpc(ec2, ready.vpc, [])
    assert results[0].status is Status.FAIL
    assert results[0].detail == f"VpcId is {ready.vpc} but SubnetIds is empty"
    assert "SubnetIds=subnet-a,subnet-b" in results[0].remediation


def test_cli_preflight_checks_the_existing_vpc_instead_of_the_vpc_quota(
    app: Path,
    account: PreflightClients,
    lam: tuple[Any, Stubber],
    s3files: tuple[Any, Stubber],
    ready: Net,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "preflight",
        *("--config-file", str(app / "samconfig.toml"), "--template-file", str(app / "template.yaml")),
        *("--vpc-id", ready.vpc, "--subnet-ids", f"{ready.subnet_a}, {ready.subnet_b}"),
    ]
    for _ in range(2):
        s3files[1].add_response("list_file_systems", {"fileSystems": []}, {"maxResults": 1})
        lam[1].add_response("get_account_settings", account_settings(1000))
    assert main(argv, preflight_clients=account) == 0
    out = capsys.readouterr().out
    assert (
        f"VpcId={ready.vpc} (command line), SubnetIds={ready.subnet_a},{ready.subnet_b} (command line)" in out
    )
    assert out.count("[PASS]") == 8
    assert "VPCs per Region quota" not in out
    account.ec2.modify_vpc_attribute(VpcId=ready.vpc, EnableDnsSupport={"Value": False})
    assert main(argv, preflight_clients=account) == 1
    out = capsys.readouterr().out
    assert "[FAIL] VPC DNS support and DNS hostnames" in out
    assert "fix: aws ec2 modify-vpc-attribute" in out
