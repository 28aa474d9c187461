"""Fakes shared by the verify.py tests: a sleep-driven clock, template-shaped network and responses."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.response import StreamingBody
from template_functions import functions

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.stub import Stubber

ACCOUNT = "123456789012"
FS_ID = "fs-0123456789abcdef0"
AP_ARN = f"arn:aws:s3files:us-east-1:{ACCOUNT}:file-system/{FS_ID}/access-point/fsap-0123456789abcdef0"
BUCKET = "verify-data-bucket"
DASHBOARD_URL = (
    "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards/dashboard/app-dash"
)


@dataclass
class FakeClock:
    """Epoch clock that only moves when slept; ``on_sleep`` lets a test change the world mid-wait.

    It starts at the real time because CloudWatch Logs (and moto) reject events older than 14 days.
    """

    t: float = field(default_factory=lambda: float(int(time.time())))
    sleeps: list[float] = field(default_factory=list)
    on_sleep: Callable[[int], None] | None = None

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))


@dataclass
class Net:
    vpc: str
    subnet_a: str
    subnet_b: str
    az_a: str
    az_b: str
    function_sg: str
    mount_target_sg: str


def nfs_rule(group_id: str, port: int = 2049) -> dict[str, Any]:
    return {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "UserIdGroupPairs": [{"GroupId": group_id}],
    }


def mount_target(
    subnet: str, az_id: str, status: str = "available", ip: str = "10.0.1.10", message: str = ""
) -> dict[str, Any]:
    target = {
        "mountTargetId": f"fsmt-{subnet[-17:]}",
        "ownerId": ACCOUNT,
        "subnetId": subnet,
        "availabilityZoneId": az_id,
        "fileSystemId": FS_ID,
        "ipv4Address": ip,
        "status": status,
    }
    return target | ({"statusMessage": message} if message else {})


def both_targets(net: Net, status: str = "available") -> list[dict[str, Any]]:
    return [
        mount_target(net.subnet_a, net.az_a, status, "10.0.1.10"),
        mount_target(net.subnet_b, net.az_b, status, "10.0.2.10"),
    ]


def stub_status(stub: Stubber, fs_status: str, targets: list[dict[str, Any]], message: str = "") -> None:
    """Queue one poll: get_file_system then list_mount_targets."""
    fs = {"fileSystemId": FS_ID, "status": fs_status} | ({"statusMessage": message} if message else {})
    stub.add_response("get_file_system", fs, {"fileSystemId": FS_ID})
    stub.add_response("list_mount_targets", {"mountTargets": targets}, {"fileSystemId": FS_ID})


def invoke_response(payload: Any, function_error: str | None = None) -> dict[str, Any]:
    raw = json.dumps(payload).encode()
    response: dict[str, Any] = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(raw), len(raw))}
    return response | ({"FunctionError": function_error} if function_error else {})


def function_config(
    name: str, net: Net, subnets: list[str] | None = None, ap_arn: str = AP_ARN
) -> dict[str, Any]:
    return {
        "FunctionName": name,
        "State": "Active",
        "VpcConfig": {
            "SubnetIds": subnets or [net.subnet_a, net.subnet_b],
            "SecurityGroupIds": [net.function_sg],
        },
        "FileSystemConfigs": [{"Arn": ap_arn, "LocalMountPath": "/mnt/s3data"}],
        "LoggingConfig": {"LogGroup": f"/aws/lambda/stack/{name}"},
    }


def create_stack(net: Net, name: str = "app", drop: tuple[str, ...] = ()) -> dict[str, str]:
    """A moto stack whose Outputs carry the template's output keys (minus ``drop``)."""
    outputs = {
        "BucketName": BUCKET,
        "FileSystemId": FS_ID,
        "AccessPointArn": AP_ARN,
        "CommittedFilesS3Prefix": f"s3://{BUCKET}/lambda/",
        **{f"{function.logical_id}Name": name for name, function in functions().items()},
        "FunctionSecurityGroupId": net.function_sg,
        "MountTargetSecurityGroupId": net.mount_target_sg,
        "FunctionSubnetIds": f"{net.subnet_a},{net.subnet_b}",
        "DashboardUrl": DASHBOARD_URL,
    }
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items() if k not in drop},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )
    return outputs


# An application shaped like the template after its split (a root template and a nested functions
# template from a local Location), with opt-in reservations: ReservedConcurrency 0 = none.
ROOT_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  VpcId: {Type: String, Default: ""}
  SubnetIds: {Type: CommaDelimitedList, Default: ""}
  ReservedConcurrency: {Type: Number, Default: 0, MinValue: 0}
  LogRetentionDays: {Type: Number, Default: 30}
Conditions:
  CreateVpc: !Equals [!Ref VpcId, ""]
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Condition: CreateVpc
    Properties: {CidrBlock: 10.42.0.0/16}
  Functions:
    Type: AWS::Serverless::Application
    Properties:
      Location: functions.yaml
      Parameters:
        ReservedConcurrency: !Ref ReservedConcurrency
        VpcId: !If [CreateVpc, !Ref Vpc, !Ref VpcId]
"""
FUNCTIONS_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  ReservedConcurrency: {Type: Number, Default: 0}
  VpcId: {Type: String}
Conditions:
  HasReservation: !Not [!Equals [!Ref ReservedConcurrency, 0]]
Globals:
  Function:
    Runtime: python3.13
Resources:
  WriterFunction:
    Type: AWS::Serverless::Function
    Properties: &reserving
      ReservedConcurrentExecutions: !If [HasReservation, !Ref ReservedConcurrency, !Ref AWS::NoValue]
  ReaderFunction: {Type: AWS::Serverless::Function, Properties: *reserving}
  UnzipFunction: {Type: AWS::Serverless::Function, Properties: *reserving}
  JanitorFunction:
    Type: AWS::Serverless::Function
    Properties: {Timeout: 60}
"""
SAMCONFIG = """
version = 0.1
[default.global.parameters]
stack_name = "app-dev"
[default.deploy.parameters]
parameter_overrides = "LogRetentionDays=14"
[prod.global.parameters]
region = "eu-west-1"
[prod.deploy.parameters]
stack_name = "app-prod"
parameter_overrides = ["ReservedConcurrency=50", "LogRetentionDays=90"]
"""


def account_settings(limit: int, unreserved: int | None = None) -> dict[str, Any]:
    """lambda GetAccountSettings (moto lacks it) for an account with this concurrency limit."""
    pool = limit if unreserved is None else unreserved
    return {"AccountLimit": {"ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": pool}}
