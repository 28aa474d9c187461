"""Fixtures for scripts/verify.py: moto for CloudFormation/EC2/S3/Logs/STS/Service Quotas, Stubber for
s3files and Lambda.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from verify_fakes import FUNCTIONS_TEMPLATE, ROOT_TEMPLATE, SAMCONFIG, FakeClock, Net, nfs_rule

# verify.py runs as a script with scripts/ on sys.path; the tests import it (and s3files_ops) the same way.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from s3files_ops.account import PreflightClients  # found through the sys.path entry above

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def ec2(aws: None) -> Any:
    return boto3.client("ec2", region_name="us-east-1")


@pytest.fixture
def net(ec2: Any) -> Net:
    """A VPC like the template builds: two subnets in two AZs, NFS from the function SG to the MT SG."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    fn_sg = ec2.create_security_group(VpcId=vpc, GroupName="fn", Description="fn")["GroupId"]
    mt_sg = ec2.create_security_group(VpcId=vpc, GroupName="mt", Description="mt")["GroupId"]
    all_out = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.revoke_security_group_egress(GroupId=fn_sg, IpPermissions=all_out)
    ec2.authorize_security_group_egress(GroupId=fn_sg, IpPermissions=[nfs_rule(mt_sg)])
    ec2.authorize_security_group_ingress(GroupId=mt_sg, IpPermissions=[nfs_rule(fn_sg)])
    return Net(
        vpc, a["SubnetId"], b["SubnetId"], a["AvailabilityZoneId"], b["AvailabilityZoneId"], fn_sg, mt_sg
    )


@pytest.fixture
def s3files() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("s3files", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


@pytest.fixture
def lam() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("lambda", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A root template, its nested functions template and a samconfig.toml (see verify_fakes)."""
    for name, text in (
        ("template.yaml", ROOT_TEMPLATE),
        ("functions.yaml", FUNCTIONS_TEMPLATE),
        ("samconfig.toml", SAMCONFIG),
    ):
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.fixture
def account(aws: None, lam: tuple[Any, Stubber], s3files: tuple[Any, Stubber]) -> PreflightClients:
    """Preflight's clients: moto where it answers, the Lambda and s3files stubs where it does not."""
    return PreflightClients(
        sts=boto3.client("sts", region_name="us-east-1"),
        cloudformation=boto3.client("cloudformation", region_name="us-east-1"),
        lambda_=lam[0],
        s3files=s3files[0],
        ec2=boto3.client("ec2", region_name="us-east-1"),
        servicequotas=boto3.client("service-quotas", region_name="us-east-1"),
    )
