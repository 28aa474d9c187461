"""Preflight's Availability Zones (moto EC2, us-east-1, where moto's us-east-1e is use1-az3): the two
the created VPC gets, like Fn::GetAZs or from AvailabilityZoneIdA/B, and the existing subnets' AZs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from s3files_ops.checklist import Status
from s3files_ops.preflight import PF_ZONES, check_azs, check_created_zones

if TYPE_CHECKING:
    from verify_fakes import Net

WHERE = "parameter_overrides of [default.deploy.parameters] in samconfig.toml"


def _zones(ec2: Any, a: str = "", b: str = "") -> Any:
    return check_created_zones(ec2, {"AvailabilityZoneIdA": a, "AvailabilityZoneIdB": b}, WHERE)


def _keep_default_subnets(ec2: Any, zones: set[str]) -> None:
    for subnet in ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]:
        if subnet["AvailabilityZone"] not in zones:
            ec2.delete_subnet(SubnetId=subnet["SubnetId"])


def test_the_first_two_zones_by_name_pass(ec2: Any) -> None:
    result = _zones(ec2)
    assert (result.name, result.status) == (PF_ZONES, Status.PASS)
    assert result.detail == "us-east-1a (use1-az6), us-east-1b (use1-az1), the first two of Fn::GetAZs"


def test_fn_getazs_keeps_only_zones_with_a_default_subnet(ec2: Any) -> None:
    _keep_default_subnets(ec2, {"us-east-1c", "us-east-1d"})
    assert _zones(ec2).detail.startswith("us-east-1c (use1-az2), us-east-1d (use1-az4),")


def test_a_zone_where_lambda_does_not_run_fails_with_the_ids_to_choose(ec2: Any) -> None:
    _keep_default_subnets(ec2, {"us-east-1e", "us-east-1f"})
    result = _zones(ec2)
    assert result.status is Status.FAIL
    assert "us-east-1e (use1-az3), us-east-1f (use1-az5)" in result.detail
    assert result.detail.endswith("Lambda does not run functions in use1-az3")
    assert "AvailabilityZoneIdA=<id> AvailabilityZoneIdB=<id>" in result.remediation
    assert "use1-az6, use1-az1, use1-az2, use1-az4, use1-az5" in result.remediation
    assert WHERE in result.remediation


def test_without_any_default_subnet_every_zone_counts(ec2: Any) -> None:
    _keep_default_subnets(ec2, set())
    assert _zones(ec2).detail.startswith("us-east-1a (use1-az6), us-east-1b (use1-az1),")


def test_chosen_zone_ids_are_used(ec2: Any) -> None:
    result = _zones(ec2, "use1-az1", "use1-az2")
    assert result.status is Status.PASS
    assert result.detail == "us-east-1b (use1-az1), us-east-1c (use1-az2), AvailabilityZoneIdA/B"


@pytest.mark.parametrize(
    ("a", "b", "problem"),
    [
        ("use1-az3", "use1-az1", "Lambda does not run functions in use1-az3"),
        ("use1-az9", "use1-az1", "AvailabilityZoneIdA=use1-az9 not an available AZ id here (us-east-1)"),
        ("use1-az1", "", "AvailabilityZoneIdB=(empty) not an available AZ id here"),
        ("use1-az1", "use1-az1", "the same AZ twice"),
    ],
)
def test_chosen_zone_ids_that_cannot_work_fail(ec2: Any, a: str, b: str, problem: str) -> None:
    result = _zones(ec2, a, b)
    assert result.status is Status.FAIL
    assert problem in result.detail
    assert "choose two AZ ids of use1-az6, use1-az1" in result.remediation


def test_existing_subnets_where_lambda_does_not_run_fail(ec2: Any, net: Net) -> None:
    bad = ec2.create_subnet(VpcId=net.vpc, CidrBlock="10.0.5.0/24", AvailabilityZone="us-east-1e")["Subnet"]
    subnets = ec2.describe_subnets(SubnetIds=[net.subnet_a, bad["SubnetId"]])["Subnets"]
    result = check_azs(subnets)
    assert result.status is Status.FAIL
    assert (
        result.detail
        == f"{bad['SubnetId']} (us-east-1e = use1-az3): an AZ where Lambda does not run functions"
    )
    assert "AvailabilityZoneId" in result.remediation
    good = ec2.describe_subnets(SubnetIds=[net.subnet_a, net.subnet_b])["Subnets"]
    assert check_azs(good).status is Status.PASS
