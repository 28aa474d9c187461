"""Checks of the composed stack: the root and the functions template, transformed, resolved and
composed (see template_model.compose), so a fact that spans the nesting reads as one template.

Each `check_*(template) -> list[str]` returns the problems it found, one sentence each saying what
is wrong; an empty list means the fact holds. They encode what the S3 Files facts and the project
contract require, so a test can run them on the real template and on deliberately broken copies.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

from template_functions import function_outputs, functions
from template_model import allowed, as_list

FUNCTIONS = tuple(function.logical_id for function in functions().values())
# The functions that serve requests, which a reservation (ReservedConcurrency) is for: all but the
# scheduled ones (the janitor).
SERVING = tuple(function.logical_id for function in functions().values() if not function.scheduled)
PREFIX_LIST_LOOKUP = "PrefixListLookupFunction"
CLIENT_ACCESS = ("s3files:ClientMount", "s3files:ClientWrite", "s3files:ClientRootAccess")
# s3files_store.config.STAGING_GRACE_SECONDS: added to the longest commit before a staging file is abandoned.
STAGING_GRACE_SECONDS = 60
# What each function's Metadata MountAccess (read, read-write) lets its policy grant.
CLIENT_ACTIONS = {
    function.logical_id: {"s3files:ClientMount", *(["s3files:ClientWrite"] if function.writes else [])}
    for function in functions().values()
}
DIRECT_READ_ACTIONS = {"s3:GetObject", "s3:GetObjectVersion"}
# Functions that never read file data (the writer only writes, the janitor lists and deletes): no
# direct reads, hence no S3 access at all.
NO_FILE_DATA_READS = ("WriterFunction", "JanitorFunction")
ARCHITECTURES = {"x86_64", "arm64"}
# The only ranges a created VPC may take (RFC 1918).
PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
CONTRACT_OUTPUTS = {
    "BucketName",
    "FileSystemId",
    "FileSystemArn",
    "AccessPointArn",
    "MountPath",
    "CommittedFilesS3Prefix",
    "FunctionSecurityGroupId",
    "MountTargetSecurityGroupId",
    "FunctionSubnetIds",
    "DeadLetterQueueUrl",
    "DashboardUrl",
} | {name for function in functions().values() for name in function_outputs(function)}
# Lambda's metrics every function has an alarm on, and those its dashboard row shows (with statistics).
PER_FUNCTION_ALARMS = ("Errors", "Throttles")
LAMBDA_WIDGET_METRICS = {"Errors": {"Sum"}, "Throttles": {"Sum"}, "Duration": {"p50", "p99"}}
# The handlers' own metrics (s3files_store.observability) the dashboard shows, with their statistics.
STORAGE_WIDGET_METRICS = {
    ("CommitLatency", "p50"),
    ("CommitLatency", "p99"),
    ("CommitBytes", "Sum"),
    ("CommitFailures", "Sum"),
    ("RejectedRequests", "Sum"),
    ("StagingFilesRemoved", "Sum"),
    ("SweepFailures", "Sum"),
    ("ExtractLatency", "p50"),
    ("ExtractLatency", "p99"),
    ("ExtractedFiles", "Sum"),
    ("ExtractedBytes", "Sum"),
    ("ExtractFailures", "Sum"),
}
MOUNT_ERROR_TERMS = ("S3FilesMount", "MountError", "Permission denied", "Stale file handle")
LOG_RETENTION_DAYS = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192}
LOG_RETENTION_DAYS |= {2557, 2922, 3288, 3653}
NOOP_EGRESS_CIDRS = {"127.0.0.1/32", "255.255.255.255/32"}
# AWS::S3Files::AccessPoint's range for POSIX ids; its schema sets no count for SecondaryGids, so
# the EFS access point's (and NFS AUTH_SYS's) 16 applies.
MAX_POSIX_ID = 4294967295
MAX_SECONDARY_GIDS = 16
# DataBucket's objects, written with its ARN or (as the functions stack does) with its name.
BUCKET_OBJECTS = ("${DataBucket.Arn}/", "arn:${AWS::Partition}:s3:::${DataBucket}/")


@dataclass(frozen=True)
class DashboardMetric:
    """A metric a dashboard widget shows; a SEARCH's dimension values are None."""

    title: str
    namespace: str
    name: str
    dimensions: dict[str, str | None]
    stat: str | None


def getatt(resource: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [resource, attribute]}


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def _key(value: Any) -> str:
    """A hashable, order-stable form of a (possibly intrinsic) value."""
    return json.dumps(value, sort_keys=True)


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {rid: r for rid, r in template["Resources"].items() if r["Type"] == resource_type}


def props(template: dict[str, Any], rid: str) -> dict[str, Any]:
    return template["Resources"].get(rid, {}).get("Properties", {})


def role_statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """Inline policy statements of the function's execution role."""
    role = props(template, function).get("Role", {}).get("Fn::GetAtt", [""])[0]
    statements: list[dict[str, Any]] = []
    for policy in props(template, role).get("Policies", []):
        statements += as_list(policy["PolicyDocument"]["Statement"])
    return statements


def allows(statement: dict[str, Any], action: str) -> bool:
    """Whether an Allow statement covers `action`, through wildcards ("s3:Delete*", "*") or a NotAction
    that does not exclude it (IAM action names are case-insensitive)."""
    if statement.get("Effect") != "Allow":
        return False
    matches = any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in _patterns(statement))
    return matches != ("NotAction" in statement)


def _patterns(statement: dict[str, Any]) -> list[str]:
    return [str(p) for p in as_list(statement.get("NotAction", statement.get("Action", [])))]


def _grants(statements: list[dict[str, Any]], actions: set[str], resource: Any) -> bool:
    return any(
        s.get("Effect") == "Allow"
        and actions <= set(as_list(s.get("Action", [])))
        and s.get("Resource") == resource
        for s in statements
    )


def _direct_reads(template: dict[str, Any], function: str) -> bool:
    configs = props(template, function).get("FileSystemConfigs", [{}])
    return configs[0].get("S3FilesConfig", {}).get("DirectS3Read", "AUTO") != "DISABLED"


def check_function_mounts(template: dict[str, Any]) -> list[str]:
    """Each function mounts the access point, depends on every mount target, runs in their subnets."""
    problems: list[str] = []
    mount_targets = set(of_type(template, "AWS::S3Files::MountTarget"))
    mount_subnets = {_key(props(template, mt).get("SubnetId")) for mt in mount_targets}
    for fn in FUNCTIONS:
        p = props(template, fn)
        configs = p.get("FileSystemConfigs", [])
        if len(configs) != 1:
            problems.append(f"{fn}: needs exactly one FileSystemConfigs entry, has {len(configs)}")
            continue
        config = configs[0]
        if config.get("Arn") != getatt("AccessPoint", "AccessPointArn"):
            problems.append(f"{fn}: FileSystemConfigs Arn must be !GetAtt AccessPoint.AccessPointArn")
        if not re.fullmatch(r"/mnt/[a-zA-Z0-9-_.]+", str(config.get("LocalMountPath"))):
            problems.append(
                f"{fn}: LocalMountPath {config.get('LocalMountPath')!r} is not /mnt/<one segment>"
            )
        if config.get("S3FilesConfig", {}).get("DirectS3Read") not in {"AUTO", "ENABLED", "DISABLED"}:
            problems.append(f"{fn}: S3FilesConfig.DirectS3Read must be AUTO, ENABLED or DISABLED")
        missing = mount_targets - set(as_list(template["Resources"][fn].get("DependsOn", [])))
        if missing or not mount_targets:
            problems.append(f"{fn}: must DependsOn every mount target, missing {sorted(missing)}")
        vpc = p.get("VpcConfig", {})
        if {_key(s) for s in vpc.get("SubnetIds", [])} != mount_subnets:
            problems.append(f"{fn}: VpcConfig.SubnetIds must be exactly the mount targets' subnets")
        if vpc.get("SecurityGroupIds") not in (
            [ref("FunctionSecurityGroup")],
            [getatt("FunctionSecurityGroup", "GroupId")],
        ):
            problems.append(f"{fn}: VpcConfig.SecurityGroupIds must be [FunctionSecurityGroup]")
    return problems


def _sg_name(value: Any) -> str | None:
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return value["Fn::GetAtt"][0]
    return None


def _rules(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(direction, group logical id, rule) for inline and standalone security group rules."""
    rules = []
    for sg in of_type(template, "AWS::EC2::SecurityGroup"):
        for direction in ("Ingress", "Egress"):
            rules += [(direction, sg, r) for r in props(template, sg).get(f"SecurityGroup{direction}", [])]
    for direction in ("Ingress", "Egress"):
        for rid in of_type(template, f"AWS::EC2::SecurityGroup{direction}"):
            rule = props(template, rid)
            rules.append((direction, str(_sg_name(rule.get("GroupId"))), rule))
    return rules


def _is_tcp(rule: dict[str, Any], port: int) -> bool:
    return str(rule.get("IpProtocol")) == "tcp" and rule.get("FromPort") == port == rule.get("ToPort")


def s3_prefix_lists(template: dict[str, Any]) -> list[Any]:
    """What may name the S3 managed prefix list: the S3PrefixListId given, else the lookup's answer."""
    given = template["Parameters"].get("S3PrefixListId")
    return [given] if given else [getatt("S3PrefixList", "PrefixListId")]


def check_security_groups(template: dict[str, Any]) -> list[str]:
    """NFS only between the two groups, no open ingress or default egress, HTTPS iff direct reads and
    only ever to the S3 managed prefix list."""
    problems: list[str] = []
    for sg in of_type(template, "AWS::EC2::SecurityGroup"):
        if not props(template, sg).get("SecurityGroupEgress"):
            problems.append(f"{sg}: no SecurityGroupEgress, so the default allow-all egress rule stays")
    https_egress = 0
    for direction, group, rule in _rules(template):
        where = f"{group} {direction.lower()} rule {rule.get('Description')!r}"
        if not rule.get("Description"):
            problems.append(f"{group}: a {direction.lower()} rule has no Description")
        if str(rule.get("IpProtocol")) in {"-1", "all"}:
            problems.append(f"{where}: allows all protocols")
        if direction == "Ingress" and (rule.get("CidrIp") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0"):
            problems.append(f"{where}: ingress from anywhere")
        if direction == "Ingress" and not (
            group == "MountTargetSecurityGroup"
            and _is_tcp(rule, 2049)
            and _sg_name(rule.get("SourceSecurityGroupId")) == "FunctionSecurityGroup"
        ):
            problems.append(f"{where}: the only ingress allowed is TCP 2049 from FunctionSecurityGroup")
        no_op = rule.get("CidrIp") in NOOP_EGRESS_CIDRS
        if direction == "Egress" and group == "MountTargetSecurityGroup" and not no_op:
            problems.append(f"{where}: mount targets never initiate connections; egress must be a no-op")
        if direction == "Egress" and group == "FunctionSecurityGroup":
            to_mount_targets = _sg_name(rule.get("DestinationSecurityGroupId")) == "MountTargetSecurityGroup"
            destinations = rule.keys() & {"CidrIp", "CidrIpv6", "DestinationSecurityGroupId"}
            if _is_tcp(rule, 443) and not destinations:
                https_egress += 1
                if rule.get("DestinationPrefixListId") not in s3_prefix_lists(template):
                    problems.append(f"{where}: HTTPS egress must go to the S3 managed prefix list only")
            elif _is_tcp(rule, 443):
                problems.append(f"{where}: HTTPS egress to {sorted(destinations)}; only the S3 prefix list")
            elif not (_is_tcp(rule, 2049) and to_mount_targets):
                problems.append(f"{where}: functions may only reach TCP 2049 on the mount targets and HTTPS")
    if not any(
        d == "Ingress" and g == "MountTargetSecurityGroup" and _is_tcp(r, 2049)
        for d, g, r in _rules(template)
    ):
        problems.append("MountTargetSecurityGroup: no TCP 2049 ingress from the functions")
    if not any(
        d == "Egress" and g == "FunctionSecurityGroup" and _is_tcp(r, 2049) for d, g, r in _rules(template)
    ):
        problems.append("FunctionSecurityGroup: no TCP 2049 egress to the mount targets")
    direct = any(_direct_reads(template, fn) for fn in FUNCTIONS)
    if direct != (https_egress > 0):
        problems.append(f"FunctionSecurityGroup: HTTPS egress rules {https_egress} but direct reads {direct}")
    return problems


def check_function_iam(template: dict[str, Any]) -> list[str]:
    """s3files client actions scoped to the file system and access point; direct-read S3 access only."""
    problems: list[str] = []
    for fn in FUNCTIONS:
        role = props(template, fn).get("Role", {}).get("Fn::GetAtt", [""])[0]
        for arn in props(template, role).get("ManagedPolicyArns", []):
            if re.search(r"AmazonS3Files|FullAccess", str(arn)):
                problems.append(f"{fn}: managed policy {arn} is broader than the file system")
        granted: set[str] = set()
        s3_reads = False
        for s in role_statements(template, fn):
            actions = set(as_list(s.get("Action", [])))
            if s.get("Resource") == "*" or "*" in as_list(s.get("Resource")) or "*" in actions:
                problems.append(f"{fn}: statement {s.get('Sid')!r} grants on '*'")
            client = {a for a in actions if a.lower().startswith("s3files:")}
            if client:
                granted |= client
                if s.get("Resource") != getatt("FileSystem", "FileSystemArn"):
                    problems.append(f"{fn}: s3files actions must be on !GetAtt FileSystem.FileSystemArn only")
                condition = s.get("Condition", {}).get("StringEquals", {}).get("s3files:AccessPointArn")
                if condition != getatt("AccessPoint", "AccessPointArn"):
                    problems.append(f"{fn}: s3files actions need the s3files:AccessPointArn condition")
            s3 = {a for a in actions if a.startswith("s3:")}
            if s3:
                s3_reads = True
                if not s3 <= DIRECT_READ_ACTIONS:
                    problems.append(
                        f"{fn}: S3 actions {sorted(s3 - DIRECT_READ_ACTIONS)} beyond direct reads"
                    )
                root = template["Parameters"]["AccessPointRootPath"]
                if s.get("Resource") not in [
                    {"Fn::Sub": f"{bucket}{root[1:]}/*"} for bucket in BUCKET_OBJECTS
                ]:
                    problems.append(
                        f"{fn}: direct-read S3 access must be limited to DataBucket objects under {root}"
                    )
        if granted != CLIENT_ACTIONS[fn]:
            problems.append(f"{fn}: s3files actions {sorted(granted)}, expected {sorted(CLIENT_ACTIONS[fn])}")
        if fn in NO_FILE_DATA_READS and (s3_reads or _direct_reads(template, fn)):
            problems.append(
                f"{fn}: never reads file data, so it needs DirectS3Read DISABLED and no S3 grant "
                f"(s3:GetObject granted={s3_reads}, direct reads={_direct_reads(template, fn)})"
            )
        if s3_reads != _direct_reads(template, fn):
            problems.append(
                f"{fn}: s3:GetObject granted={s3_reads} but direct reads={_direct_reads(template, fn)}"
            )
    return problems


def check_bucket(template: dict[str, Any]) -> list[str]:
    """Versioned, encrypted, private, owner-enforced, lifecycle-managed, retained, TLS-only."""
    problems: list[str] = []
    bucket = template["Resources"].get("DataBucket", {})
    p = bucket.get("Properties", {})
    if p.get("VersioningConfiguration", {}).get("Status") != "Enabled":
        problems.append("DataBucket: S3 Files needs versioning Enabled")
    [sse] = p.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [{}])
    algorithm = sse.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
    if algorithm not in {"AES256", "aws:kms"} or not sse.get("BucketKeyEnabled"):
        problems.append("DataBucket: default encryption must be SSE-S3 or SSE-KMS with a bucket key")
    if algorithm == "aws:kms" and not sse["ServerSideEncryptionByDefault"].get("KMSMasterKeyID"):
        problems.append("DataBucket: SSE-KMS without KMSMasterKeyID")
    block = p.get("PublicAccessBlockConfiguration", {})
    for setting in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
        if block.get(setting) is not True:
            problems.append(f"DataBucket: PublicAccessBlockConfiguration.{setting} must be true")
    if p.get("OwnershipControls", {}).get("Rules") != [{"ObjectOwnership": "BucketOwnerEnforced"}]:
        problems.append("DataBucket: ObjectOwnership must be BucketOwnerEnforced")
    rules = [r for r in p.get("LifecycleConfiguration", {}).get("Rules", []) if r.get("Status") == "Enabled"]
    if not any(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") for r in rules):
        problems.append("DataBucket: no enabled rule expiring noncurrent versions")
    if not any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") for r in rules):
        problems.append("DataBucket: no enabled rule aborting incomplete multipart uploads")
    if bucket.get("DeletionPolicy") != "Retain" or bucket.get("UpdateReplacePolicy") != "Retain":
        problems.append("DataBucket: DeletionPolicy and UpdateReplacePolicy must be Retain")
    policy = props(template, "DataBucketPolicy")
    deny_tls = [
        s
        for s in as_list(policy.get("PolicyDocument", {}).get("Statement", []))
        if s.get("Effect") == "Deny"
        and str(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
    ]
    if policy.get("Bucket") != ref("DataBucket") or not deny_tls:
        problems.append("DataBucketPolicy: must deny requests with aws:SecureTransport false on DataBucket")
    return problems


def check_file_system(template: dict[str, Any]) -> list[str]:
    """The file system and the role S3 Files assumes, exactly as the facts describe them."""
    problems: list[str] = []
    fs = props(template, "FileSystem")
    if fs.get("Bucket") != getatt("DataBucket", "Arn") or fs.get("RoleArn") != getatt(
        "FileSystemRole", "Arn"
    ):
        problems.append("FileSystem: Bucket must be the DataBucket ARN and RoleArn the FileSystemRole ARN")
    role = props(template, "FileSystemRole")
    trust = [
        s
        for s in as_list(role.get("AssumeRolePolicyDocument", {}).get("Statement", []))
        if "elasticfilesystem.amazonaws.com" in as_list(s.get("Principal", {}).get("Service"))
        and "sts:AssumeRole" in as_list(s.get("Action"))
    ]
    conditions: dict[str, Any] = {}
    for s in trust:
        for operator in s.get("Condition", {}).values():
            conditions |= operator
    if not trust:
        problems.append("FileSystemRole: must trust elasticfilesystem.amazonaws.com (sts:AssumeRole)")
    if conditions.get("aws:SourceAccount") != ref("AWS::AccountId"):
        problems.append("FileSystemRole: trust needs aws:SourceAccount = AWS::AccountId")
    source_arn = "arn:${AWS::Partition}:s3files:${AWS::Region}:${AWS::AccountId}:file-system/*"
    if conditions.get("aws:SourceArn") != {"Fn::Sub": source_arn}:
        problems.append(f"FileSystemRole: trust needs aws:SourceArn = {source_arn}")
    statements: list[dict[str, Any]] = []
    for policy in role.get("Policies", []):
        statements += as_list(policy["PolicyDocument"]["Statement"])
    objects = {"Fn::Sub": "${DataBucket.Arn}/*"}
    rules = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/DO-NOT-DELETE-S3-Files*"
    required = [
        ({"s3:ListBucket", "s3:ListBucketVersions"}, getatt("DataBucket", "Arn")),
        (
            {"s3:AbortMultipartUpload", "s3:DeleteObject", "s3:DeleteObjectTagging", "s3:GetObject*"}
            | {"s3:List*", "s3:PutObject*"},
            objects,
        ),
    ]
    for actions, resource in required:
        if not _grants(statements, actions, resource):
            problems.append(f"FileSystemRole: missing {sorted(actions)} on {resource}")
    if any(allows(s, "s3:DeleteObjectVersion") for s in statements):
        problems.append(
            "FileSystemRole: allows s3:DeleteObjectVersion; object versions are the recovery path"
        )
    for s in statements:
        if s.get("Effect") == "Allow" and "*" in as_list(s.get("Resource")):
            problems.append(f"FileSystemRole: statement {s.get('Sid')!r} grants on '*'")
    write_rules = {
        f"events:{a}" for a in ("PutRule", "PutTargets", "DeleteRule", "DisableRule", "EnableRule")
    }
    write_rules.add("events:RemoveTargets")
    managed = [
        s
        for s in statements
        if write_rules <= set(as_list(s.get("Action")))
        and s.get("Resource") == {"Fn::Sub": rules}
        and s.get("Condition", {}).get("StringEquals", {}).get("events:ManagedBy")
        == "elasticfilesystem.amazonaws.com"
    ]
    if not managed:
        problems.append(
            "FileSystemRole: missing EventBridge rule management on DO-NOT-DELETE-S3-Files* (ManagedBy)"
        )
    read_rules = {
        "events:DescribeRule",
        "events:ListRules",
        "events:ListRuleNamesByTarget",
        "events:ListTargetsByRule",
    }
    if not any(read_rules <= set(as_list(s.get("Action"))) for s in statements):
        problems.append(f"FileSystemRole: missing {sorted(read_rules)}")
    kms = {"kms:Decrypt", "kms:GenerateDataKey*", "kms:Encrypt", "kms:ReEncrypt*", "kms:DescribeKey"}
    key = fs.get("KmsKeyId")
    if key is not None and not _grants(statements, kms, key):
        problems.append("FileSystemRole: the file system uses a KMS key the role cannot use")
    if key is None and any(a.startswith("kms:") for s in statements for a in _patterns(s)):
        problems.append("FileSystemRole: KMS permissions without a KMS key")
    return problems


def _posix_id(value: Any) -> bool:
    """A POSIX id as the access point takes it: a decimal string, 1 (not root) to 4294967295."""
    return isinstance(value, str) and value.isdigit() and 1 <= int(value) <= MAX_POSIX_ID


def check_access_point(template: dict[str, Any]) -> list[str]:
    """POSIX ids as non-root strings in the schema's range, secondary groups only as given (at most
    16); a valid root path created with owner = those ids."""
    problems: list[str] = []
    p = props(template, "AccessPoint")
    user = p.get("PosixUser", {})
    for field in ("Uid", "Gid"):
        value = user.get(field)
        if not _posix_id(value):
            problems.append(
                f"AccessPoint: PosixUser.{field} must be an id from 1 to {MAX_POSIX_ID} as a string, "
                f"got {value!r}"
            )
    given = template["Parameters"].get("PosixSecondaryGids", "")
    secondary = user.get("SecondaryGids")
    if secondary != (given.split(",") if given else None):
        problems.append(
            f"AccessPoint: SecondaryGids {secondary!r}, expected exactly PosixSecondaryGids {given!r}"
        )
    secondary = secondary if isinstance(secondary, list) else []
    if len(secondary) > MAX_SECONDARY_GIDS or not all(map(_posix_id, secondary)):
        problems.append(
            f"AccessPoint: SecondaryGids must be up to {MAX_SECONDARY_GIDS} ids from 1 to {MAX_POSIX_ID}, "
            f"got {secondary!r}"
        )
    root = p.get("RootDirectory", {})
    path = str(root.get("Path"))
    parts = path.split("/")[1:]
    if (
        not path.startswith("/")
        or len(path) > 100
        or not 1 <= len(parts) <= 4
        or any(not c or c.startswith(".") for c in parts)
    ):
        problems.append(
            f"AccessPoint: root path {path!r} must be absolute, at most 100 characters, 1-4 levels, "
            f"no '.'-components"
        )
    creation = root.get("CreationPermissions", {})
    if (creation.get("OwnerUid"), creation.get("OwnerGid")) != (user.get("Uid"), user.get("Gid")):
        problems.append("AccessPoint: CreationPermissions owner must be the PosixUser (else mounts fail)")
    if creation.get("Permissions") not in {"750", "755"}:
        problems.append(
            f"AccessPoint: root permissions {creation.get('Permissions')!r}, expected '750' or '755'"
        )
    return problems


def check_mount_targets(template: dict[str, Any]) -> list[str]:
    """Two mount targets of the file system, in two subnets (two AZs), behind the mount target SG."""
    problems: list[str] = []
    targets = of_type(template, "AWS::S3Files::MountTarget")
    if len(targets) != 2:
        problems.append(f"expected 2 mount targets, found {len(targets)}")
    subnets = [props(template, mt).get("SubnetId") for mt in targets]
    if len({_key(s) for s in subnets}) != len(subnets) or "" in subnets:
        problems.append(f"mount targets need distinct, non-empty subnets, got {subnets}")
    zones = [
        props(template, s["Ref"]).get("AvailabilityZoneId")
        or props(template, s["Ref"]).get("AvailabilityZone")
        for s in subnets
        if isinstance(s, dict)
    ]
    if None in zones:
        problems.append(
            "a created subnet of a mount target has neither AvailabilityZone nor AvailabilityZoneId"
        )
    if len({_key(z) for z in zones}) != len(zones):
        problems.append("the created subnets of the mount targets share an Availability Zone")
    for mt in targets:
        p = props(template, mt)
        if p.get("FileSystemId") not in (getatt("FileSystem", "FileSystemId"), ref("FileSystem")):
            problems.append(f"{mt}: FileSystemId must reference FileSystem")
        if p.get("SecurityGroups") != [getatt("MountTargetSecurityGroup", "GroupId")]:
            problems.append(f"{mt}: SecurityGroups must be [MountTargetSecurityGroup]")
    return problems


def check_network(template: dict[str, Any]) -> list[str]:
    """Created VPC: private only, DNS on, S3 gateway endpoint on the subnets' route table. Else: reuse it."""
    problems: list[str] = []
    resources = template["Resources"]
    for forbidden in ("AWS::EC2::NatGateway", "AWS::EC2::InternetGateway", "AWS::EC2::EIP"):
        if of_type(template, forbidden):
            problems.append(f"{forbidden}: the design has no internet path; NFS and S3 stay private")
    if "Vpc" not in resources:
        vpc_id = template["Parameters"]["VpcId"]
        for sg in of_type(template, "AWS::EC2::SecurityGroup"):
            if props(template, sg).get("VpcId") != vpc_id:
                problems.append(f"{sg}: must be created in the given VPC {vpc_id}")
        if of_type(template, "AWS::EC2::Subnet"):
            problems.append("subnets created although an existing VPC was given")
        return problems
    vpc = props(template, "Vpc")
    if vpc.get("EnableDnsSupport") is not True or vpc.get("EnableDnsHostnames") is not True:
        problems.append("Vpc: EnableDnsSupport and EnableDnsHostnames must be true")
    endpoint = props(template, "S3GatewayEndpoint")
    if endpoint.get("VpcEndpointType") != "Gateway" or ref("PrivateRouteTable") not in endpoint.get(
        "RouteTableIds", []
    ):
        problems.append("S3GatewayEndpoint: must be a Gateway endpoint on PrivateRouteTable")
    if not str(endpoint.get("ServiceName", {}).get("Fn::Sub", "")).endswith(".s3"):
        problems.append("S3GatewayEndpoint: ServiceName must be com.amazonaws.<region>.s3")
    root = template["Parameters"]["AccessPointRootPath"]
    committed = {"Fn::Sub": f"${{DataBucket.Arn}}{root}/*"}
    statements = as_list(endpoint.get("PolicyDocument", {}).get("Statement", []))
    if not statements or any(
        s.get("Effect") != "Allow"
        or set(_patterns(s)) != DIRECT_READ_ACTIONS
        or "NotAction" in s
        or as_list(s.get("Resource")) != [committed]
        for s in statements
    ):
        problems.append(
            f"S3GatewayEndpoint: its policy must allow only {sorted(DIRECT_READ_ACTIONS)} on DataBucket "
            f"objects under {root} (the default policy lets the VPC reach any bucket)"
        )
    associated = {
        _key(p.get("SubnetId"))
        for rid in of_type(template, "AWS::EC2::SubnetRouteTableAssociation")
        if (p := props(template, rid)).get("RouteTableId") == ref("PrivateRouteTable")
    }
    for subnet in ("PrivateSubnetA", "PrivateSubnetB"):
        if _key(ref(subnet)) not in associated:
            problems.append(f"{subnet}: not associated with PrivateRouteTable (no route to the S3 endpoint)")
        if props(template, subnet).get("MapPublicIpOnLaunch") is not False:
            problems.append(f"{subnet}: MapPublicIpOnLaunch must be false")
    return problems


def check_logging(template: dict[str, Any]) -> list[str]:
    """Each function logs to its own retained log group, with a mount-error metric filter and alarm."""
    problems: list[str] = []
    filters = {
        _key(props(template, f).get("LogGroupName")): props(template, f)
        for f in of_type(template, "AWS::Logs::MetricFilter")
    }
    alarmed = {props(template, a).get("MetricName") for a in of_type(template, "AWS::CloudWatch::Alarm")}
    for fn in FUNCTIONS:
        group = props(template, fn).get("LoggingConfig", {}).get("LogGroup", {})
        if template["Resources"].get(group.get("Ref", ""), {}).get("Type") != "AWS::Logs::LogGroup":
            problems.append(f"{fn}: LoggingConfig.LogGroup must reference the function's AWS::Logs::LogGroup")
            continue
        retention = props(template, group["Ref"]).get("RetentionInDays")
        if retention is None or int(retention) not in LOG_RETENTION_DAYS:
            problems.append(f"{group['Ref']}: RetentionInDays {retention!r} is not a CloudWatch retention")
        metric_filter = filters.get(_key(group))
        if metric_filter is None:
            problems.append(f"{fn}: no metric filter counting mount errors on its log group")
            continue
        missing = [t for t in MOUNT_ERROR_TERMS if t not in metric_filter.get("FilterPattern", "")]
        if missing:
            problems.append(f"{fn}: mount-error filter pattern misses {missing}")
        metric = metric_filter["MetricTransformations"][0]["MetricName"]
        if metric not in alarmed:
            problems.append(f"{fn}: no alarm on the {metric} metric")
    return problems


def check_dead_letter(template: dict[str, Any]) -> list[str]:
    """Failed async invocations of every function land in the encrypted DeadLetterQueue."""
    problems: list[str] = []
    queue = props(template, "DeadLetterQueue")
    if queue.get("SqsManagedSseEnabled") is not True and not queue.get("KmsMasterKeyId"):
        problems.append("DeadLetterQueue: must be encrypted (SqsManagedSseEnabled: true)")
    resource = template["Resources"]["DeadLetterQueue"]
    if resource.get("DeletionPolicy") != "Retain" or resource.get("UpdateReplacePolicy") != "Retain":
        problems.append(
            "DeadLetterQueue: DeletionPolicy and UpdateReplacePolicy must be Retain (failed events)"
        )
    arn = getatt("DeadLetterQueue", "Arn")
    for fn in FUNCTIONS:
        if props(template, fn).get("DeadLetterConfig", {}).get("TargetArn") != arn:
            problems.append(f"{fn}: DeadLetterConfig.TargetArn must be the DeadLetterQueue ARN")
        if not _grants(role_statements(template, fn), {"sqs:SendMessage"}, arn):
            problems.append(f"{fn}: role cannot sqs:SendMessage to the DeadLetterQueue")
    return problems


def check_concurrency(template: dict[str, Any]) -> list[str]:
    """Reservation is opt-in: ReservedConcurrency 0 reserves nothing anywhere in the stack; any other
    value is reserved for every function that serves requests, and for no other function (the janitor's
    schedule keeps its runs apart without one)."""
    problems: list[str] = []
    wanted = str(template["Parameters"].get("ReservedConcurrency", "0"))
    for rid in of_type(template, "AWS::Lambda::Function"):
        value = props(template, rid).get("ReservedConcurrentExecutions")
        expected = wanted if rid in SERVING and wanted != "0" else None
        if (None if value is None else str(value)) != expected:
            problems.append(
                f"{rid}: ReservedConcurrentExecutions {value!r}, expected {expected or 'none'} "
                f"with ReservedConcurrency={wanted}"
            )
    return problems


def check_janitor(template: dict[str, Any]) -> list[str]:
    """Scheduled every 15 minutes, bounded, and only removes staging files older than any live commit:
    COMMIT_TIMEOUT_SECONDS is the longest Timeout of the functions that commit (every holder of
    s3files:ClientWrite but the janitor, whose only staging file, its clock probe, lives within its own
    run: that Timeout stays within COMMIT_TIMEOUT_SECONDS + the grace)."""
    problems: list[str] = []
    janitor = props(template, "JanitorFunction")
    timeout = int(janitor.get("Timeout", 900))
    if timeout > 120:
        problems.append(f"JanitorFunction: Timeout {timeout} s is not bounded (<= 120 s)")
    scheduled = [
        r
        for rid in of_type(template, "AWS::Events::Rule")
        if (r := props(template, rid)).get("ScheduleExpression") == "rate(15 minutes)"
        and any(t.get("Arn") == getatt("JanitorFunction", "Arn") for t in r.get("Targets", []))
    ]
    if not scheduled:
        problems.append("JanitorFunction: no rate(15 minutes) schedule targets it")
    env = janitor.get("Environment", {}).get("Variables", {})
    committers = [
        rid
        for rid in of_type(template, "AWS::Lambda::Function")
        if rid != "JanitorFunction"
        and any(allows(s, "s3files:ClientWrite") for s in role_statements(template, rid))
    ]
    longest = max((int(props(template, rid).get("Timeout", 3)) for rid in committers), default=None)
    commit = env.get("COMMIT_TIMEOUT_SECONDS")
    if longest is None or commit != str(longest):
        problems.append(
            f"JanitorFunction: COMMIT_TIMEOUT_SECONDS {commit!r} must be the longest Timeout of the "
            f"functions that commit ({longest} s, {sorted(committers)}), else it removes staging files "
            f"of live commits"
        )
    elif timeout > longest + STAGING_GRACE_SECONDS:
        problems.append(f"JanitorFunction: Timeout {timeout} s outlives its own probe's protection")
    youngest = (longest or 900) + STAGING_GRACE_SECONDS
    if (
        not str(env.get("STAGING_MAX_AGE_SECONDS")).isdigit()
        or int(env["STAGING_MAX_AGE_SECONDS"]) < youngest
    ):
        problems.append(
            f"JanitorFunction: STAGING_MAX_AGE_SECONDS must be at least {youngest} (commit + grace)"
        )
    if not str(env.get("JANITOR_MAX_DELETIONS")).isdigit() or int(env["JANITOR_MAX_DELETIONS"]) < 1:
        problems.append("JanitorFunction: JANITOR_MAX_DELETIONS must be a positive number")
    return problems


def check_file_system_policy(template: dict[str, Any]) -> list[str]:
    """Clients mount only through an access point and never as root: one policy on the file system,
    Denies only (an Allow there would grant what the clients' IAM policies do not), in place before
    any mount target exists."""
    problems: list[str] = []
    policies = [
        rid
        for rid in of_type(template, "AWS::S3Files::FileSystemPolicy")
        if props(template, rid).get("FileSystemId")
        in (getatt("FileSystem", "FileSystemId"), ref("FileSystem"))
    ]
    if len(policies) != 1:
        return [f"FileSystem: needs exactly one AWS::S3Files::FileSystemPolicy, found {len(policies)}"]
    [policy] = policies
    statements = as_list(props(template, policy).get("Policy", {}).get("Statement", []))
    everyone = [
        s
        for s in statements
        if s.get("Principal") in ({"AWS": "*"}, "*")
        and s.get("Resource") == getatt("FileSystem", "FileSystemArn")
        and not s.keys() & {"NotAction", "NotPrincipal", "NotResource"}
    ]

    def denied(action: str, condition: dict[str, Any]) -> bool:
        return any(
            s.get("Effect") == "Deny"
            and any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in _patterns(s))
            and s.get("Condition", {}) == condition
            for s in everyone
        )

    without_access_point = {"Null": {"s3files:AccessPointArn": "true"}}
    for action in CLIENT_ACCESS:
        if not (denied(action, without_access_point) or denied(action, {})):
            problems.append(f"{policy}: must deny {action} to every principal without an access point")
    if not denied("s3files:ClientRootAccess", {}):
        problems.append(f"{policy}: must deny s3files:ClientRootAccess to every principal, always")
    if any(s.get("Effect") != "Deny" for s in statements):
        problems.append(
            f"{policy}: must only deny; an Allow would grant clients what their IAM policies do not"
        )
    for mt in of_type(template, "AWS::S3Files::MountTarget"):
        if policy not in as_list(template["Resources"][mt].get("DependsOn", [])):
            problems.append(f"{mt}: must DependsOn {policy}, so that no client mounts before it applies")
    return problems


def check_prefix_list_lookup(template: dict[str, Any]) -> list[str]:
    """Where the stack must find the S3 prefix list itself (created VPC, direct reads, no S3PrefixListId),
    a custom resource asks EC2 for com.amazonaws.<region>.s3: its function runs outside the VPC, may
    only DescribeManagedPrefixLists, and logs to its own retained log group. Elsewhere it does not exist."""
    resources = template["Resources"]
    needed = (
        "Vpc" in resources
        and any(_direct_reads(template, fn) for fn in FUNCTIONS)
        and not template["Parameters"].get("S3PrefixListId")
    )
    if needed != ("S3PrefixList" in resources) or needed != (PREFIX_LIST_LOOKUP in resources):
        return [f"S3PrefixList and {PREFIX_LIST_LOOKUP} must exist exactly when the stack looks the list up"]
    if not needed:
        return []
    problems: list[str] = []
    custom = props(template, "S3PrefixList")
    if custom.get("ServiceToken") != getatt(PREFIX_LIST_LOOKUP, "Arn"):
        problems.append(f"S3PrefixList: ServiceToken must be !GetAtt {PREFIX_LIST_LOOKUP}.Arn")
    if custom.get("PrefixListName") != {"Fn::Sub": "com.amazonaws.${AWS::Region}.s3"}:
        problems.append("S3PrefixList: PrefixListName must be com.amazonaws.${AWS::Region}.s3")
    if not 60 <= int(custom.get("ServiceTimeout", 3600)) <= 900:
        problems.append("S3PrefixList: ServiceTimeout of a few minutes (60 to 900 s), not the default hour")
    function = props(template, PREFIX_LIST_LOOKUP)
    if "VpcConfig" in function:
        problems.append(f"{PREFIX_LIST_LOOKUP}: must run outside the VPC (the created VPC cannot reach EC2)")
    if function.get("Runtime") != "python3.13" or not 10 <= int(function.get("Timeout", 3)) <= 120:
        problems.append(f"{PREFIX_LIST_LOOKUP}: python3.13 with a Timeout from 10 to 120 s")
    granted = {
        p
        for s in role_statements(template, PREFIX_LIST_LOOKUP)
        if s.get("Effect") == "Allow"
        for p in _patterns(s)
    }
    if granted != {"ec2:DescribeManagedPrefixLists"}:
        problems.append(
            f"{PREFIX_LIST_LOOKUP}: may only ec2:DescribeManagedPrefixLists, allows {sorted(granted)}"
        )
    role = function.get("Role", {}).get("Fn::GetAtt", [""])[0]
    managed = [str(arn) for arn in props(template, role).get("ManagedPolicyArns", [])]
    if any("AWSLambdaBasicExecutionRole" not in arn for arn in managed):
        problems.append(
            f"{PREFIX_LIST_LOOKUP}: managed policies beyond AWSLambdaBasicExecutionRole: {managed}"
        )
    group = function.get("LoggingConfig", {}).get("LogGroup", {}).get("Ref", "")
    if int(props(template, group).get("RetentionInDays", 0)) not in LOG_RETENTION_DAYS:
        problems.append(f"{PREFIX_LIST_LOOKUP}: must log to its own log group with a retention")
    return problems


def check_environment(template: dict[str, Any]) -> list[str]:
    """The variables s3files_store.config reads, consistent with the mount."""
    problems: list[str] = []
    services = set()
    for fn in FUNCTIONS:
        p = props(template, fn)
        env = p.get("Environment", {}).get("Variables", {})
        mount = p.get("FileSystemConfigs", [{}])[0].get("LocalMountPath")
        if env.get("MOUNT_ROOT") != mount:
            problems.append(
                f"{fn}: MOUNT_ROOT {env.get('MOUNT_ROOT')!r} differs from LocalMountPath {mount!r}"
            )
        if env.get("REQUIRE_MOUNT") != "true":
            problems.append(f"{fn}: REQUIRE_MOUNT must be 'true' in the deployed template")
        for name in ("DOCUMENT_PREFIX", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
            if not env.get(name):
                problems.append(f"{fn}: {name} is not set")
        services.add(env.get("POWERTOOLS_SERVICE_NAME"))
    if len(services) != len(FUNCTIONS):
        problems.append("functions must have distinct POWERTOOLS_SERVICE_NAME values")
    return problems


def check_alarms(template: dict[str, Any]) -> list[str]:
    """The operational alarms exist, explain themselves and notify consistently."""
    problems: list[str] = []
    alarms = {rid: props(template, rid) for rid in of_type(template, "AWS::CloudWatch::Alarm")}
    seen = {(str(a.get("Namespace")), str(a.get("MetricName"))) for a in alarms.values()}
    for expected in (
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/Lambda", "Duration"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/S3Files", "PendingExports"),
    ):
        if expected not in seen:
            problems.append(f"no alarm on {expected[0]} {expected[1]}")
    writer_ms = int(props(template, "WriterFunction").get("Timeout", 3)) * 1000
    for rid, alarm in alarms.items():
        if len(str(alarm.get("AlarmDescription", ""))) < 40:
            problems.append(f"{rid}: AlarmDescription must say what it means and what to do")
        if alarm.get("MetricName") == "Duration" and not 0 < float(alarm.get("Threshold", 0)) < writer_ms:
            problems.append(f"{rid}: Duration threshold must be below the writer timeout ({writer_ms} ms)")
    if len({_key(a.get("AlarmActions")) for a in alarms.values()}) > 1:
        problems.append("alarms notify inconsistently: some have AlarmActions, some not")
    for fn in FUNCTIONS:
        for metric in PER_FUNCTION_ALARMS:
            if not any(
                a.get("Namespace") == "AWS/Lambda"
                and a.get("MetricName") == metric
                and a.get("Dimensions") == [{"Name": "FunctionName", "Value": ref(fn)}]
                for a in alarms.values()
            ):
                problems.append(f"{fn}: no alarm on its AWS/Lambda {metric} (dimension FunctionName)")
    dlq_depth = [
        a
        for a in alarms.values()
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and a.get("Dimensions") == [{"Name": "QueueName", "Value": getatt("DeadLetterQueue", "QueueName")}]
    ]
    if not dlq_depth:
        problems.append("DeadLetterQueue: no alarm on its ApproximateNumberOfMessagesVisible (QueueName)")
    return problems


def dashboard_body(template: dict[str, Any]) -> dict[str, Any]:
    """The Dashboard's body as JSON: its Fn::Join of Fn::Sub strings, with the ${...} references left
    in place (they only ever stand inside JSON strings). ValueError when it is not that or not JSON."""
    body = props(template, "Dashboard").get("DashboardBody")
    if not (isinstance(body, dict) and list(body) == ["Fn::Join"] and body["Fn::Join"][0] == ""):
        raise ValueError("Dashboard: DashboardBody must be a Fn::Join with the separator ''")
    parts = [part["Fn::Sub"] if isinstance(part, dict) else part for part in body["Fn::Join"][1]]
    if not all(isinstance(part, str) for part in parts):
        raise ValueError("Dashboard: each DashboardBody part must be a string or a Fn::Sub of one")
    try:
        parsed: dict[str, Any] = json.loads("".join(parts))
    except ValueError as exc:
        raise ValueError(f"Dashboard: DashboardBody is not JSON: {exc}") from exc
    return parsed


_SEARCH = re.compile(r"""SEARCH\('\{"?([^",]+)"?,([^}]*)\} MetricName="([^"]+)"', '([^']+)'""")


def dashboard_metrics(template: dict[str, Any]) -> list[DashboardMetric]:
    """Every metric the Dashboard's widgets show, with its widget's title: a metric array
    [namespace, name, dimension, value, ..., {options}], or a SEARCH over a metric name (its
    dimension values None)."""
    found: list[DashboardMetric] = []
    for widget in dashboard_body(template).get("widgets", []):
        properties = widget.get("properties", {})
        for entry in properties.get("metrics", []):
            options = entry[-1] if entry and isinstance(entry[-1], dict) else {}
            fields = entry[:-1] if options else entry
            stat = options.get("stat", properties.get("stat"))
            if "expression" in options and (match := _SEARCH.search(options["expression"])):
                namespace, keys, name, stat = match.groups()
                dimensions = dict.fromkeys(k.strip() for k in keys.split(",") if k.strip())
                found.append(DashboardMetric(properties.get("title", ""), namespace, name, dimensions, stat))
            elif "expression" not in options and len(fields) >= 2 and len(fields) % 2 == 0:
                dimensions = dict(zip(fields[2::2], fields[3::2], strict=True))
                found.append(
                    DashboardMetric(properties.get("title", ""), fields[0], fields[1], dimensions, stat)
                )
            else:
                found.append(DashboardMetric(properties.get("title", ""), "", str(entry), {}, stat))
    return found


def check_dashboard(template: dict[str, Any]) -> list[str]:
    """One dashboard (output DashboardUrl): the storage metrics the handlers emit, in their namespace
    and with their one dimension, service; the dead-letter queue's depth; each function's Lambda
    errors, throttles and duration. Every widget names its Region."""
    try:
        body = dashboard_body(template)
        shown = dashboard_metrics(template)
    except ValueError as exc:
        return [str(exc)]
    problems: list[str] = []
    for widget in body.get("widgets", []):
        title = widget.get("properties", {}).get("title")
        if widget.get("properties", {}).get("region") != "${AWS::Region}":
            problems.append(f"Dashboard: widget {title!r} must set region ${{AWS::Region}}")
    environments = [props(template, fn).get("Environment", {}).get("Variables", {}) for fn in FUNCTIONS]
    namespaces = {_key(env.get("POWERTOOLS_METRICS_NAMESPACE")) for env in environments}
    services = {env.get("POWERTOOLS_SERVICE_NAME") for env in environments}
    [namespace] = namespaces if len(namespaces) == 1 else [None]
    for m in shown:
        if m.namespace == "AWS/Lambda":
            value = m.dimensions.get("FunctionName")
            if list(m.dimensions) != ["FunctionName"] or value not in {f"${{{fn}}}" for fn in FUNCTIONS}:
                problems.append(f"Dashboard: {m.title!r} shows {m.name} of {m.dimensions}, not of a function")
        elif m.namespace == "AWS/SQS":
            if m.dimensions != {"QueueName": "${DeadLetterQueue.QueueName}"}:
                problems.append(f"Dashboard: {m.title!r} shows a queue other than the DeadLetterQueue")
        elif namespace is None or _key({"Fn::Sub": m.namespace}) != namespace:
            problems.append(
                f"Dashboard: {m.title!r} reads namespace {m.namespace!r}, not the functions' "
                f"POWERTOOLS_METRICS_NAMESPACE"
            )
        elif list(m.dimensions) != ["service"] or m.dimensions["service"] not in services | {None}:
            problems.append(
                f"Dashboard: {m.title!r} shows {m.name} by {m.dimensions}: the handlers' metrics have one "
                f"dimension, service, whose values are the functions' POWERTOOLS_SERVICE_NAME"
            )
    for fn in FUNCTIONS:
        for metric, stats in LAMBDA_WIDGET_METRICS.items():
            seen = {
                m.stat
                for m in shown
                if (m.namespace, m.name, m.dimensions)
                == ("AWS/Lambda", metric, {"FunctionName": f"${{{fn}}}"})
            }
            if not stats <= seen:
                problems.append(f"Dashboard: no {metric} ({sorted(stats - seen)}) widget of {fn}")
    storage = {(m.name, m.stat) for m in shown if m.namespace not in {"AWS/Lambda", "AWS/SQS"}}
    for wanted in sorted(STORAGE_WIDGET_METRICS - storage):
        problems.append(f"Dashboard: no widget shows {wanted[0]} ({wanted[1]})")
    if not any(m.namespace == "AWS/SQS" and m.name == "ApproximateNumberOfMessagesVisible" for m in shown):
        problems.append("Dashboard: no widget shows the DeadLetterQueue's depth")
    url = str(template.get("Outputs", {}).get("DashboardUrl", {}).get("Value", {}))
    if "${Dashboard}" not in url:
        problems.append("output DashboardUrl must link to the Dashboard (${Dashboard})")
    return problems


# The unzip function's retries while S3 Files imports an upload: Lambda's most (1 then 2 minutes later).
UNZIP_RETRIES = 2
# The longest an upload's event may wait (in EventBridge, in Lambda's queue) before the DLQ.
PIPELINE_MAX_EVENT_AGE_SECONDS = 3600


def check_upload_pipeline(template: dict[str, Any]) -> list[str]:
    """An upload of <root>/<UploadPrefix>*.zip to this bucket, and nothing else, invokes the unzip
    function through one EventBridge rule, whose delivery retries are bounded and end in the DLQ (which
    only that rule may send to); the function retries twice (the import lag) within a bounded event
    age, and maps object keys with the access point's own root path."""
    problems: list[str] = []
    unzip_arn, dlq_arn = getatt("UnzipFunction", "Arn"), getatt("DeadLetterQueue", "Arn")
    params = template["Parameters"]
    root = str(props(template, "AccessPoint").get("RootDirectory", {}).get("Path", ""))
    rules = [
        (rid, target)
        for rid in of_type(template, "AWS::Events::Rule")
        for target in props(template, rid).get("Targets", [])
        if target.get("Arn") == unzip_arn
    ]
    if len(rules) != 1:
        return [
            f"UnzipFunction: {len(rules)} EventBridge rules target it, expected exactly one (the uploads)"
        ]
    (rule, target), rule_arn = rules[0], getatt(rules[0][0], "Arn")
    wanted = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [ref("DataBucket")]},
            "object": {"key": [{"wildcard": f"{root.strip('/')}/{params.get('UploadPrefix')}*.zip"}]},
        },
    }
    if props(template, rule).get("EventPattern") != wanted:
        problems.append(
            f"{rule}: EventPattern {props(template, rule).get('EventPattern')}, expected {wanted}"
        )
    retry = target.get("RetryPolicy", {})
    if not 0 < int(retry.get("MaximumEventAgeInSeconds", 86400)) <= PIPELINE_MAX_EVENT_AGE_SECONDS:
        problems.append(f"{rule}: target RetryPolicy.MaximumEventAgeInSeconds must be set, at most 3600 s")
    if "MaximumRetryAttempts" not in retry:
        problems.append(f"{rule}: target RetryPolicy.MaximumRetryAttempts must be set (default: 185)")
    if target.get("DeadLetterConfig", {}).get("Arn") != dlq_arn:
        problems.append(f"{rule}: target DeadLetterConfig.Arn must be the DeadLetterQueue ARN")
    permissions = [
        p
        for rid in of_type(template, "AWS::Lambda::Permission")
        if (p := props(template, rid)).get("FunctionName") in (unzip_arn, ref("UnzipFunction"))
    ]
    if [(p.get("Principal"), p.get("Action"), p.get("SourceArn")) for p in permissions] != [
        ("events.amazonaws.com", "lambda:InvokeFunction", rule_arn)
    ]:
        problems.append(f"UnzipFunction: only {rule} (SourceArn) may invoke it, through one permission")
    sends = [
        statement
        for rid in of_type(template, "AWS::SQS::QueuePolicy")
        if ref("DeadLetterQueue") in props(template, rid).get("Queues", [])
        for statement in as_list(props(template, rid)["PolicyDocument"]["Statement"])
        if allows(statement, "sqs:SendMessage")
    ]
    if [(s.get("Principal"), s.get("Resource"), s.get("Condition")) for s in sends] != [
        ({"Service": "events.amazonaws.com"}, dlq_arn, {"ArnEquals": {"aws:SourceArn": rule_arn}})
    ]:
        problems.append(f"DeadLetterQueue: its policy must let only {rule} (aws:SourceArn) send to it")
    configs = [
        props(template, rid)
        for rid in of_type(template, "AWS::Lambda::EventInvokeConfig")
        if props(template, rid).get("FunctionName") == ref("UnzipFunction")
    ]
    config = configs[0] if len(configs) == 1 else {}
    if config.get("MaximumRetryAttempts") != UNZIP_RETRIES:
        problems.append(f"UnzipFunction: EventInvokeConfig.MaximumRetryAttempts must be {UNZIP_RETRIES}")
    if not 0 < int(config.get("MaximumEventAgeInSeconds", 21600)) <= PIPELINE_MAX_EVENT_AGE_SECONDS:
        problems.append(
            "UnzipFunction: EventInvokeConfig.MaximumEventAgeInSeconds must be set, at most 3600 s"
        )
    env = props(template, "UnzipFunction").get("Environment", {}).get("Variables", {})
    expected = {
        "ACCESS_POINT_ROOT_PATH": root,
        "UPLOAD_PREFIX": params.get("UploadPrefix"),
        "EXTRACT_PREFIX": params.get("ExtractPrefix"),
    }
    for name, value in expected.items():
        if env.get(name) != value:
            problems.append(f"UnzipFunction: {name} is {env.get(name)!r}, expected {value!r}")
    return problems


def check_outputs(template: dict[str, Any]) -> list[str]:
    """The contract's outputs, each described; those naming a resource (re-exported from the
    functions stack or not) name the right one."""
    outputs = template.get("Outputs", {})
    problems = [f"missing output {name}" for name in sorted(CONTRACT_OUTPUTS - outputs.keys())]
    problems += [
        f"output {name} has no Description" for name, o in outputs.items() if not o.get("Description")
    ]
    expected = {
        "FileSystemId": getatt("FileSystem", "FileSystemId"),
        "AccessPointArn": getatt("AccessPoint", "AccessPointArn"),
        "FunctionSecurityGroupId": ref("FunctionSecurityGroup"),
        "MountTargetSecurityGroupId": ref("MountTargetSecurityGroup"),
        "DeadLetterQueueUrl": ref("DeadLetterQueue"),
    }
    for function in functions().values():
        # The functions log to their own groups (LoggingConfig), not to /aws/lambda/<function name>.
        fn = function.logical_id
        group = props(template, fn).get("LoggingConfig", {}).get("LogGroup")
        expected |= dict(zip(function_outputs(function), (ref(fn), getatt(fn, "Arn"), group), strict=True))
    problems += [
        f"output {name} must be {value}, is {outputs[name].get('Value')}"
        for name, value in expected.items()
        if name in outputs and outputs[name].get("Value") != value
    ]
    return problems


def check_network_order(template: dict[str, Any]) -> list[str]:
    """The functions wait for every security group rule (the NFS ingress of the mount targets, the
    HTTPS egress when it exists): a function created earlier meets S3FilesMountConnectivity."""
    rules = sorted(
        rid
        for kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")
        for rid in of_type(template, kind)
    )
    problems: list[str] = []
    for fn in FUNCTIONS:
        missing = [r for r in rules if r not in as_list(template["Resources"][fn].get("DependsOn", []))]
        if missing:
            problems.append(f"{fn}: must wait for the security group rules {missing} (DependsOn)")
    return problems


def check_tracing(template: dict[str, Any]) -> list[str]:
    """Every function traces as the Tracing parameter says; Active only where segments can leave the
    VPC: the created VPC needs an X-Ray interface endpoint (it has no NAT)."""
    problems: list[str] = []
    wanted = template["Parameters"].get("Tracing")
    if wanted not in {"PassThrough", "Active"}:
        problems.append(f"parameter Tracing is {wanted!r}: PassThrough or Active")
    xray_endpoints = [
        rid
        for rid in of_type(template, "AWS::EC2::VPCEndpoint")
        if re.search(r'\.xray"\}?$', json.dumps(props(template, rid).get("ServiceName", "")))
    ]
    for fn in FUNCTIONS:
        mode = props(template, fn).get("TracingConfig", {}).get("Mode", "PassThrough")
        if mode != wanted:
            problems.append(f"{fn}: TracingConfig Mode {mode!r}, expected the Tracing parameter {wanted!r}")
        if mode == "Active" and "Vpc" in template["Resources"] and not xray_endpoints:
            problems.append(f"{fn}: Active tracing in the created VPC, which has no path to X-Ray")
    return problems


def check_architecture(template: dict[str, Any]) -> list[str]:
    """Every function runs on the Architecture parameter's instruction set, and its layers are
    compatible with both."""
    problems: list[str] = []
    wanted = template["Parameters"].get("Architecture")
    if wanted not in ARCHITECTURES:
        problems.append(f"parameter Architecture is {wanted!r}: x86_64 or arm64")
    for fn in FUNCTIONS:
        if props(template, fn).get("Architectures") != [wanted]:
            problems.append(
                f"{fn}: Architectures {props(template, fn).get('Architectures')}, expected [{wanted}]"
            )
        for layer in props(template, fn).get("Layers", []):
            compatible = set(props(template, layer.get("Ref", "")).get("CompatibleArchitectures", []))
            if compatible != ARCHITECTURES:
                problems.append(f"{fn}: layer {layer} is compatible with {sorted(compatible)}, not both")
    return problems


def check_vpc_cidr(sam_template: dict[str, Any]) -> list[str]:
    """Checks the template as written: VpcCidr takes /16 to /22 networks in the private ranges only
    (every first and second octet is tried)."""
    spec = sam_template["Parameters"].get("VpcCidr", {})
    problems: list[str] = []
    for first in range(256):
        for second in (0, 15, 16, 31, 32, 167, 168, 169, 255):
            for prefix in (15, 16, 22, 23):
                cidr = f"{first}.{second}.0.0/{prefix}"
                network = ipaddress.ip_network(cidr, strict=False)
                private = 16 <= prefix <= 22 and any(network.subnet_of(r) for r in PRIVATE_RANGES)
                if allowed(spec, cidr) != private:
                    problems.append(f"VpcCidr: {cidr} is {'refused' if private else 'accepted'}")
    return problems[:5]


# Checks of a SAM template as written (parameters' constraints), not of the composed stack.
SPEC_CHECKS = (check_vpc_cidr,)


CHECKS = (
    check_function_mounts,
    check_security_groups,
    check_function_iam,
    check_bucket,
    check_file_system,
    check_file_system_policy,
    check_access_point,
    check_mount_targets,
    check_network,
    check_prefix_list_lookup,
    check_logging,
    check_dead_letter,
    check_concurrency,
    check_janitor,
    check_environment,
    check_alarms,
    check_dashboard,
    check_upload_pipeline,
    check_outputs,
    check_network_order,
    check_tracing,
    check_architecture,
)
