"""Preflight before a deploy: the account and Region (s3files_ops.account), on an update whether the
new parameters replace storage or network (s3files_ops.replacement), then the network mode the
parameters choose: the VPC quota for a created VPC, or the subnets, AZs, DNS attributes and route to
S3 of an existing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from s3files_ops.account import (
    PF_CONCURRENCY,
    PF_S3FILES,
    PF_STACK,
    PF_VPC_QUOTA,
    RESERVED_CONCURRENCY,
    Deployed,
    Plan,
    check_concurrency,
    check_identity,
    check_s3files,
    check_stack,
    check_vpc_quota,
)
from s3files_ops.checklist import Status, StepFailure, StepResult, option, skip, step
from s3files_ops.params import (
    ConfigError,
    Parameters,
    defaults,
    effective_parameters,
    load_template,
    reservations,
    total,
)
from s3files_ops.replacement import PF_REPLACE, check_replacements, deployed_template

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from botocore.client import BaseClient

    from s3files_ops.account import PreflightClients, Target
    from s3files_ops.params import SamConfig

PF_SUBNETS = "VPC and subnets exist"
PF_AZS = "Exactly two subnets in distinct AZs"
PF_DNS = "VPC DNS support and DNS hostnames"
PF_S3_ROUTE = "Route to S3 for direct reads"
PF_ZONES = "Availability Zones of the created VPC"
AZ_PARAMETERS = ("AvailabilityZoneIdA", "AvailabilityZoneIdB")
# AZ ids where Lambda refuses a function's subnets: "The provided subnets contain availability zone
# Lambda doesn't support. Please use a different set of subnets." (us-east-1, keboola/developer-portal#81;
# issue 19 names the id, use1-az3). Only ids with such a report are listed; Lambda's own error still
# catches any other, and AvailabilityZoneIdA/B (or SubnetIds) choose around it.
LAMBDA_UNSUPPORTED_AZ_IDS = frozenset({"use1-az3"})
# describe_vpc_attribute name -> (response key, modify-vpc-attribute flag)
DNS_ATTRIBUTES = {
    "enableDnsSupport": ("EnableDnsSupport", "--enable-dns-support"),
    "enableDnsHostnames": ("EnableDnsHostnames", "--enable-dns-hostnames"),
}


@step(PF_SUBNETS)
def check_subnets(ec2: BaseClient, vpc_id: str, subnet_ids: Sequence[str]) -> StepResult:
    """PASS when the VPC exists and every subnet exists inside it; ``data`` = the subnets."""
    # Filters (unlike ids) return what exists instead of failing on the first unknown id.
    where = f"region {ec2.meta.region_name}"
    if not subnet_ids:
        raise StepFailure(
            f"VpcId is {vpc_id} but SubnetIds is empty",
            "add SubnetIds=subnet-a,subnet-b (two private subnets of that VPC in two AZs) next to VpcId in "
            f"parameter_overrides (check them first with {option('--subnet-ids subnet-a,subnet-b')})",
        )
    if not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"]:
        raise StepFailure(
            f"VPC {vpc_id} not found in {where}",
            "set VpcId to an existing VPC of that Region (check one first with "
            f"{option('--vpc-id <vpc-id>')})",
        )
    subnets = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": list(subnet_ids)}])["Subnets"]
    missing = sorted(set(subnet_ids) - {s["SubnetId"] for s in subnets})
    if missing:
        raise StepFailure(
            f"subnets not found in {where}: {', '.join(missing)}",
            f"pass --subnet-ids of {vpc_id} (aws ec2 describe-subnets --filters Name=vpc-id,Values={vpc_id})",
        )
    foreign = [f"{s['SubnetId']} (in {s['VpcId']})" for s in subnets if s["VpcId"] != vpc_id]
    if foreign:
        raise StepFailure(
            f"subnets outside {vpc_id}: {', '.join(foreign)}",
            f"pick SubnetIds from {vpc_id}: mount targets and functions must share the file system's one VPC",
        )
    return StepResult(PF_SUBNETS, Status.PASS, f"{', '.join(subnet_ids)} in {vpc_id}", data=subnets)


def check_azs(subnets: Sequence[dict[str, Any]]) -> StepResult:
    """PASS for exactly two subnets in two different AZs (one mount target per AZ), none of them in an
    AZ id where Lambda cannot run."""
    zones = {s["SubnetId"]: s["AvailabilityZone"] for s in subnets}
    detail = ", ".join(f"{sid} in {zone}" for sid, zone in zones.items())
    refused = [
        f"{s['SubnetId']} ({s['AvailabilityZone']} = {s.get('AvailabilityZoneId')})"
        for s in subnets
        if s.get("AvailabilityZoneId") in LAMBDA_UNSUPPORTED_AZ_IDS
    ]
    if refused:
        return StepResult(
            PF_AZS,
            Status.FAIL,
            f"{', '.join(refused)}: an AZ where Lambda does not run functions",
            "pick SubnetIds in other AZs (`aws ec2 describe-subnets --query "
            "'Subnets[].[SubnetId,AvailabilityZoneId]'`); the AZ id, not the name, is what counts",
        )
    if len(zones) == 2 and len(set(zones.values())) == 2:
        return StepResult(PF_AZS, Status.PASS, detail)
    return StepResult(
        PF_AZS,
        Status.FAIL,
        f"need 2 subnets in 2 AZs, got {detail or 'none'}",
        "set SubnetIds to exactly two private subnets of the VPC in different Availability Zones (the "
        "template creates MountTargetA/MountTargetB, one per subnet; S3 Files allows one per AZ)",
    )


@step(PF_DNS)
def check_vpc_dns(ec2: BaseClient, vpc_id: str) -> StepResult:
    """PASS when enableDnsSupport and enableDnsHostnames are both true."""
    off = [
        attribute
        for attribute, (key, _) in DNS_ATTRIBUTES.items()
        if not ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)[key]["Value"]
    ]
    if off:
        raise StepFailure(
            f"{vpc_id} has {', '.join(off)} = false",
            "; ".join(
                f"aws ec2 modify-vpc-attribute --vpc-id {vpc_id} {DNS_ATTRIBUTES[a][1]} '{{\"Value\":true}}'"
                for a in off
            ),
        )
    return StepResult(PF_DNS, Status.PASS, f"{vpc_id}: enableDnsSupport and enableDnsHostnames are true")


def _route_tables(ec2: BaseClient, vpc_id: str, subnet_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Subnet id -> its route table (the explicit association, else the VPC's main table)."""
    explicit = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": list(subnet_ids)}]
    )
    tables = {
        a["SubnetId"]: table
        for table in explicit["RouteTables"]
        for a in table.get("Associations", [])
        if a.get("SubnetId") in subnet_ids
    }
    if len(tables) < len(subnet_ids):
        main = ec2.describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
        )["RouteTables"]
        tables.update({sid: main[0] for sid in subnet_ids if sid not in tables and main})
    return tables


def _has_nat_default_route(table: dict[str, Any]) -> bool:
    # An internet gateway route does not count: Lambda ENIs get no public IP, so only NAT-like hops work.
    hops = ("NatGatewayId", "TransitGatewayId", "NetworkInterfaceId", "InstanceId")
    return any(
        r.get("DestinationCidrBlock") == "0.0.0.0/0"
        and r.get("State") != "blackhole"
        and any(r.get(h) for h in hops)
        for r in table.get("Routes", [])
    )


@step(PF_S3_ROUTE)
def check_s3_route(ec2: BaseClient, vpc_id: str, subnet_ids: Sequence[str]) -> StepResult:
    """PASS when each subnet's route table has the S3 gateway endpoint or a NAT default route; WARN otherwise
    (direct reads then fall back to the mount, so this never fails the preflight).
    """
    service = f"com.amazonaws.{ec2.meta.region_name}.s3"
    endpoints = ec2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "service-name", "Values": [service]}]
    )["VpcEndpoints"]
    endpoint_tables = {
        rt for e in endpoints if e.get("VpcEndpointType") == "Gateway" for rt in e.get("RouteTableIds", [])
    }
    tables = _route_tables(ec2, vpc_id, subnet_ids)
    missing = [
        f"{sid} ({tables[sid]['RouteTableId'] if sid in tables else 'no route table'})"
        for sid in subnet_ids
        if sid not in tables
        or (tables[sid]["RouteTableId"] not in endpoint_tables and not _has_nat_default_route(tables[sid]))
    ]
    if not missing:
        return StepResult(
            PF_S3_ROUTE, Status.PASS, f"every subnet reaches {service} (gateway endpoint or NAT)"
        )
    return StepResult(
        PF_S3_ROUTE,
        Status.WARN,
        f"no S3 gateway endpoint or NAT route for {', '.join(missing)}: direct reads fall back to the mount",
        f"add a gateway VPC endpoint for {service} associated with those route tables (or a 0.0.0.0/0 "
        "route to a NAT gateway), or deploy with DirectS3Read=DISABLED",
    )


def _zone_fix(zones: Sequence[dict[str, Any]], where: str) -> str:
    usable = [z["ZoneId"] for z in zones if z["ZoneId"] not in LAMBDA_UNSUPPORTED_AZ_IDS]
    return (
        f"choose two AZ ids of {', '.join(usable) or '(none available)'}: AvailabilityZoneIdA=<id> "
        f"AvailabilityZoneIdB=<id> in {where} (try them first with "
        f"{option('--parameter-overrides AvailabilityZoneIdA=<id> AvailabilityZoneIdB=<id>')})"
    )


@step(PF_ZONES)
def check_created_zones(ec2: BaseClient, values: Mapping[str, str], where: str) -> StepResult:
    """The two AZs the created VPC's subnets get: AvailabilityZoneIdA/B when set, else the first two
    of Fn::GetAZs (available AZs, only those with a default subnet when any has one, sorted by name).
    FAIL when there are not two, or one is an AZ id where Lambda does not run."""
    zones = sorted(
        (
            z
            for z in ec2.describe_availability_zones(
                Filters=[{"Name": "zone-type", "Values": ["availability-zone"]}]
            )["AvailabilityZones"]
            if z.get("State") == "available"
        ),
        key=lambda z: z["ZoneName"],
    )
    chosen = [values.get(name, "") for name in AZ_PARAMETERS]
    if any(chosen):
        by_id = {z["ZoneId"]: z for z in zones}
        unknown = [
            f"{n}={v or '(empty)'}" for n, v in zip(AZ_PARAMETERS, chosen, strict=True) if v not in by_id
        ]
        if unknown or chosen[0] == chosen[1]:
            problem = f"{', '.join(unknown)} not an available AZ id here" if unknown else "the same AZ twice"
            raise StepFailure(f"{problem} ({ec2.meta.region_name})", _zone_fix(zones, where))
        picked, source = [by_id[v] for v in chosen], "AvailabilityZoneIdA/B"
    else:
        defaults = {
            s["AvailabilityZone"]
            for s in ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
        }
        # Fn::GetAZs: "only Availability Zones that have a default subnet unless none of them has one".
        candidates = [z for z in zones if z["ZoneName"] in defaults] or zones
        picked, source = candidates[:2], "the first two of Fn::GetAZs"
        if len(picked) < 2:
            raise StepFailure(
                f"Fn::GetAZs gives {len(picked)} AZ(s) in {ec2.meta.region_name}: the stack needs two",
                _zone_fix(zones, where),
            )
    detail = ", ".join(f"{z['ZoneName']} ({z['ZoneId']})" for z in picked) + f", {source}"
    refused = [z["ZoneId"] for z in picked if z["ZoneId"] in LAMBDA_UNSUPPORTED_AZ_IDS]
    if refused:
        raise StepFailure(
            f"{detail}: Lambda does not run functions in {', '.join(refused)}", _zone_fix(zones, where)
        )
    return StepResult(PF_ZONES, Status.PASS, detail)


def check_existing_vpc(ec2: BaseClient, vpc_id: str, subnet_ids: Sequence[str]) -> list[StepResult]:
    """Check an existing VPC and two subnets before deploying with VpcId/SubnetIds set."""
    subnets = check_subnets(ec2, vpc_id, subnet_ids)
    if not subnets.ok:
        return [subnets, *(skip(name, "subnets unavailable") for name in (PF_AZS, PF_DNS, PF_S3_ROUTE))]
    return [
        subnets,
        check_azs(subnets.data),
        check_vpc_dns(ec2, vpc_id),
        check_s3_route(ec2, vpc_id, subnet_ids),
    ]


@dataclass(frozen=True)
class Request:
    """What is about to be deployed: the template, samconfig.toml's environment, the command line's
    overrides (a what-if layer on top), and the stack name.
    """

    template: Path
    config: SamConfig
    command_line: dict[str, str]
    stack_name: str | None
    # Logical ids the user lets this deploy replace (--allow-replace): a WARN instead of a FAIL.
    allow_replace: frozenset[str] = frozenset()

    def parameters(self, deployed: Deployed) -> Parameters:
        """As sam deploy resolves them; on an update, parameters not overridden keep their previous value."""
        return effective_parameters(
            load_template(self.template),
            [
                (f"stack {self.stack_name}", deployed.previous),
                (f"{self.config.path.name} [{self.config.env}]", self.config.overrides),
                ("command line", self.command_line),
            ],
        )

    def plan(self, params: Parameters) -> Plan:
        values = params.values
        found = reservations(self.template, values)
        where = f"parameter_overrides of [{self.config.env}.deploy.parameters] in {self.config.path.name}"
        if RESERVED_CONCURRENCY not in values:
            return Plan(found, found, 0, f"{self.template.name} (no {RESERVED_CONCURRENCY})", where)
        at_zero = reservations(self.template, values | {RESERVED_CONCURRENCY: "0"})
        at_one = reservations(self.template, values | {RESERVED_CONCURRENCY: "1"})
        setting = (
            f"{RESERVED_CONCURRENCY}={values[RESERVED_CONCURRENCY]} ({params.sources[RESERVED_CONCURRENCY]})"
        )
        return Plan(found, at_zero, total(at_one) - total(at_zero), setting, where)


def check_update(
    cloudformation: BaseClient, request: Request, deployed: Deployed, params: Parameters
) -> StepResult:
    """Whether the update replaces storage or network: the deployed template with the stack's values
    against template.yaml with the new ones; without the deployed template (no GetTemplate), the
    parameters alone, and a WARN that template edits went unchecked."""
    template = load_template(request.template)
    old_template = deployed_template(cloudformation, str(request.stack_name))
    before = defaults(old_template or template) | deployed.previous
    result = check_replacements(
        old_template or template, before, template, params.values, request.allow_replace
    )
    if old_template is not None or result.status is not Status.PASS:
        return result
    return StepResult(
        PF_REPLACE,
        Status.WARN,
        f"{result.detail}; template edits unchecked: the deployed template could not be read",
        "allow cloudformation:GetTemplate to the identity running preflight",
    )


def network_steps(params: Parameters) -> tuple[str, ...]:
    return (
        (PF_SUBNETS, PF_AZS, PF_DNS, PF_S3_ROUTE) if params.values.get("VpcId") else (PF_VPC_QUOTA, PF_ZONES)
    )


def run_preflight(
    clients: PreflightClients | None, target: Target, request: Request
) -> tuple[list[StepResult], Parameters]:
    """Every check before a deploy, in order; the parameters they judged come back for the summary."""
    params = request.parameters(Deployed())
    identity = check_identity(target, clients.sts if clients else None)
    if clients is None or not target.region or not identity.ok:
        later = (PF_STACK, PF_S3FILES, PF_CONCURRENCY, *network_steps(params))
        return [identity, *(skip(name, "no usable credentials and Region") for name in later)], params
    region = target.region
    stack = check_stack(clients.cloudformation, clients.lambda_, request.stack_name, request.config)
    deployed: Deployed | None = stack.data
    if deployed is not None:
        params = request.parameters(deployed)
    results = [identity, stack]
    if deployed is not None and deployed.previous and request.stack_name:  # an update
        results.append(check_update(clients.cloudformation, request, deployed, params))
    results.append(check_s3files(clients.s3files, region))
    if deployed is None:
        results.append(skip(PF_CONCURRENCY, "stack state unknown"))
    else:
        try:
            plan = request.plan(params)
        except ConfigError as exc:
            results.append(
                StepResult(
                    PF_CONCURRENCY,
                    Status.WARN,
                    f"cannot compute what the deploy reserves: {exc}",
                    "check the ReservedConcurrentExecutions of the functions in the template",
                )
            )
        else:
            results.append(check_concurrency(clients.lambda_, plan, deployed.reserved, region))
    vpc_id = params.values.get("VpcId", "")
    if vpc_id:
        subnet_ids = [s.strip() for s in params.values.get("SubnetIds", "").split(",") if s.strip()]
        results += check_existing_vpc(clients.ec2, vpc_id, subnet_ids)
    else:
        where = (
            f"parameter_overrides of [{request.config.env}.deploy.parameters] in {request.config.path.name}"
        )
        results.append(check_vpc_quota(clients.ec2, clients.servicequotas, region))
        results.append(check_created_zones(clients.ec2, params.values, where))
    return results, params
