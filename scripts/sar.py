"""Derive the Serverless Application Repository (SAR) edition of template.yaml, and publish it.

SAR accepts only the resource types on its allowlist (sar/allowed-resource-types.txt), which has no
AWS::S3Files::* type, and an application installed from SAR should not create a VPC. So the SAR
edition keeps the functions and what serves only them (layer, log groups, dead-letter queue, alarms,
schedule) and takes the storage and network as parameters: an existing S3 Files access point and
file system, the bucket behind them, subnets with mount targets, and security groups.

template.yaml stays the only place where the functions are defined: `derive` drops the
infrastructure resources, rewrites every reference to them through REWRITES (failing if one is left
over), drops the conditions, parameters, rules and outputs that become unused, and writes the result
with its local paths (CodeUri, ContentUri, LicenseUrl, ReadmeUrl) made relative to its new place.

    .venv/bin/python scripts/sar.py derive                  # writes build/sar/template.yaml
    .venv/bin/python scripts/sar.py publish --s3-bucket my-sar-artifacts --region eu-west-1 \\
        --semantic-version 0.2.0                           # derive, sam build, package, publish
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from samcli.commands._utils.template import move_template
from samcli.vendor.serverlessrepo.exceptions import ServerlessRepoError
from samcli.vendor.serverlessrepo.parser import get_app_metadata
from samcli.yamlhelper import yaml_parse

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
ALLOWLIST = ROOT / "sar" / "allowed-resource-types.txt"
OUT = ROOT / "build" / "sar" / "template.yaml"

# Created by `sam deploy` of template.yaml; the SAR edition takes them as parameters instead.
INFRASTRUCTURE = frozenset(
    {
        "Vpc",
        "PrivateSubnetA",
        "PrivateSubnetB",
        "PrivateRouteTable",
        "S3GatewayEndpoint",
        "FunctionSecurityGroup",
        "MountTargetSecurityGroup",
        "DataBucket",
        "DataBucketPolicy",
        "FileSystemRole",
        "FileSystem",
        "MountTargetA",
        "MountTargetB",
        "AccessPoint",
    }
)
# The application itself: derive fails rather than drop one of these.
REQUIRED = ("WriterFunction", "ReaderFunction", "JanitorFunction", "SharedLayer", "DeadLetterQueue")
# Parameters whose value is a list: a list made only of references to it becomes the parameter itself.
LIST_PARAMETERS = frozenset({"SubnetIds", "SecurityGroupIds"})
# Conditions with a fixed value in the SAR edition: the subnets it gets play the created VPC's part.
RESOLVED_CONDITIONS = {"CreateVpc": True}


class Rewrite(NamedTuple):
    """What replaces a reference to a dropped resource: as a value, and inside a Fn::Sub string."""

    value: dict[str, Any]
    sub: str | None  # None: no string form (a list parameter cannot appear in a Sub string)


_BUCKET_ARN = "arn:${AWS::Partition}:s3:::${BucketName}"
# Keyed by (logical id, GetAtt attribute, or None for Ref).
REWRITES: dict[tuple[str, str | None], Rewrite] = {
    ("AccessPoint", "AccessPointArn"): Rewrite({"Ref": "AccessPointArn"}, "${AccessPointArn}"),
    ("FileSystem", None): Rewrite({"Ref": "FileSystemArn"}, "${FileSystemArn}"),
    ("FileSystem", "FileSystemArn"): Rewrite({"Ref": "FileSystemArn"}, "${FileSystemArn}"),
    ("DataBucket", None): Rewrite({"Ref": "BucketName"}, "${BucketName}"),
    ("DataBucket", "Arn"): Rewrite({"Fn::Sub": _BUCKET_ARN}, _BUCKET_ARN),
    ("PrivateSubnetA", None): Rewrite({"Ref": "SubnetIds"}, None),
    ("PrivateSubnetB", None): Rewrite({"Ref": "SubnetIds"}, None),
    ("FunctionSecurityGroup", None): Rewrite({"Ref": "SecurityGroupIds"}, None),
    ("FunctionSecurityGroup", "GroupId"): Rewrite({"Ref": "SecurityGroupIds"}, None),
}

NEW_PARAMETERS: dict[str, dict[str, Any]] = {
    "AccessPointArn": {
        "Type": "String",
        "AllowedPattern": "^arn:aws[a-z-]*:s3files:[a-z0-9-]+:[0-9]{12}:file-system/fs-[0-9a-f]{17,40}"
        "/access-point/fsap-[0-9a-f]{17,40}$",
        "ConstraintDescription": "must be an S3 Files access point ARN, arn:aws:s3files:<region>:<account>:"
        "file-system/fs-.../access-point/fsap-... (aws s3files list-access-points --file-system-id fs-...)",
        "Description": "S3 Files access point the functions mount. Its POSIX user must own its root "
        "directory (or it must have CreationPermissions); it must belong to FileSystemArn.",
    },
    "FileSystemArn": {
        "Type": "String",
        "AllowedPattern": "^arn:aws[a-z-]*:s3files:[a-z0-9-]+:[0-9]{12}:file-system/fs-[0-9a-f]{17,40}$",
        "ConstraintDescription": "must be an S3 Files file system ARN, arn:aws:s3files:<region>:<account>:"
        "file-system/fs-... (aws s3files list-file-systems)",
        "Description": "S3 Files file system of AccessPointArn; the functions get s3files:ClientMount "
        "(and the writer and janitor ClientWrite) on it.",
    },
    "BucketName": {
        "Type": "String",
        "AllowedPattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        "ConstraintDescription": "must be an S3 bucket name (the bucket the file system is linked to)",
        "Description": "Bucket linked to the file system; direct S3 reads get s3:GetObject on its "
        "objects under AccessPointRootPath.",
    },
    "SubnetIds": {
        "Type": "List<AWS::EC2::Subnet::Id>",
        "Description": "Subnets of the functions. Each needs a mount target of the file system in its "
        "Availability Zone, and a route to S3 (gateway endpoint or NAT) when direct reads are on.",
    },
    "SecurityGroupIds": {
        "Type": "List<AWS::EC2::SecurityGroup::Id>",
        "Description": "Security groups of the functions: they must allow egress TCP 2049 to the mount "
        "targets (whose group must allow ingress TCP 2049 from them), and HTTPS to S3 for direct reads.",
    },
}
NEW_PARAMETER_GROUP = "Existing S3 Files resources and network"
# Kept parameters whose root-template description speaks of resources the SAR edition does not create.
DESCRIPTIONS = {
    "AccessPointRootPath": "RootDirectory.Path of AccessPointArn: the S3 key prefix (under BucketName) "
    "of the committed files, where direct S3 reads are allowed.",
    "KmsKeyArn": "Empty when BucketName uses SSE-S3. Otherwise the bucket's KMS key ARN (direct S3 reads "
    "get kms:Decrypt on it); its key policy must let this account's IAM policies use it.",
}

_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.([A-Za-z0-9.]+))?\}")


class SarError(Exception):
    """The template cannot be derived or published; the message says what to change."""


def _copy(node: Any) -> Any:
    """A deep copy made of OrderedDicts (which yaml_dump writes in order) with no shared nodes.

    Going through JSON also undoes YAML anchors, so no node of the result is aliased.
    """
    return json.loads(json.dumps(node), object_pairs_hook=OrderedDict)


def load_allowlist(path: Path = ALLOWLIST) -> frozenset[str]:
    """Resource types in the allowlist file: one a line, '#' starts a comment."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return frozenset(line for line in lines if line)


def intrinsics(node: Any) -> Iterator[tuple[str, Any]]:
    """Yield (function, argument) for every Ref, Condition and Fn:: call in node, at any depth."""
    if isinstance(node, list):
        for item in node:
            yield from intrinsics(item)
    elif isinstance(node, dict):
        if len(node) == 1:
            ((key, value),) = node.items()
            if key in ("Ref", "Condition") or key.startswith("Fn::"):
                yield key, value
        for value in node.values():
            yield from intrinsics(value)


def _sub_parts(argument: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(argument, list):
        return argument[0], argument[1]
    return argument, {}


def _target(function: str, argument: Any) -> tuple[str, str | None] | None:
    """(logical id, attribute) that a Ref or GetAtt names, else None."""
    if function == "Ref" and isinstance(argument, str):
        return argument, None
    if function == "Fn::GetAtt":
        name, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
        return name, attribute
    return None


def references(node: Any) -> set[tuple[str, str | None]]:
    """Every (name, attribute) node refers to through Ref, Fn::GetAtt or a Fn::Sub variable.

    >>> sorted(references({"Fn::Sub": "${Bucket.Arn}/${Prefix}"}))
    [('Bucket', 'Arn'), ('Prefix', None)]
    """
    found: set[tuple[str, str | None]] = set()
    for function, argument in intrinsics(node):
        target = _target(function, argument)
        if target:
            found.add(target)
        elif function == "Fn::Sub":
            text, local = _sub_parts(argument)
            found.update((m[1], m[2]) for m in _SUB_VARIABLE.finditer(text) if m[1] not in local)
    return found


def _rewrite_sub(text: str, local: dict[str, Any], dropped: set[str], where: str, errors: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, attribute = match[1], match[2]
        if name in local or name not in dropped:
            return match[0]
        replacement = REWRITES.get((name, attribute))
        if replacement is None or replacement.sub is None:
            errors.append(f"{where}: Fn::Sub uses {match[0]}, which has no string replacement in REWRITES")
            return match[0]
        return replacement.sub

    return _SUB_VARIABLE.sub(replace, text)


def rewrite(node: Any, dropped: set[str], where: str, errors: list[str]) -> Any:
    """A copy of node with every reference to a dropped resource replaced as REWRITES says.

    References without a replacement are reported in errors (with their path) and left as they are.
    """
    if isinstance(node, list):
        items = [rewrite(item, dropped, f"{where}[{i}]", errors) for i, item in enumerate(node)]
        lists = [item for item in items if isinstance(item, dict) and item.get("Ref") in LIST_PARAMETERS]
        if not lists or all(item == lists[0] for item in items):
            return lists[0] if lists else items
        errors.append(
            f"{where}: {lists[0]['Ref']} would replace only part of this list; a list parameter can only "
            "replace a whole list, so list nothing but the dropped resources it stands for here"
        )
        return items
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((function, argument),) = node.items()
        target = _target(function, argument)
        if target and target[0] in dropped:
            if target in REWRITES:
                return _copy(REWRITES[target].value)
            errors.append(f"{where}: {function} {'.'.join(filter(None, target))} has no entry in REWRITES")
            return node
        if function == "Fn::Sub":
            text, local = _sub_parts(argument)
            text = _rewrite_sub(text, local, dropped, where, errors)
            if isinstance(argument, list):
                return {function: [text, rewrite(local, dropped, where, errors)]}
            return {function: text}
        if function == "Fn::If" and argument[0] in RESOLVED_CONDITIONS:
            branch = argument[1] if RESOLVED_CONDITIONS[argument[0]] else argument[2]
            return rewrite(branch, dropped, where, errors)
    return OrderedDict(
        (key, rewrite(value, dropped, f"{where}.{key}", errors)) for key, value in node.items()
    )


def _drops(resources: dict[str, Any], allowed: frozenset[str]) -> set[str]:
    """Infrastructure, types SAR rejects, and (transitively) what refers to those without a rewrite."""
    dropped = {name for name, r in resources.items() if name in INFRASTRUCTURE or r["Type"] not in allowed}
    while True:
        more = {
            name
            for name, resource in resources.items()
            if name not in dropped
            and name not in REQUIRED
            and any(t[0] in dropped and t not in REWRITES for t in references(resource))
        }
        if not more:
            return dropped
        dropped |= more


def _used_conditions(template: dict[str, Any]) -> set[str]:
    sections = [template.get(key, {}) for key in ("Globals", "Resources", "Outputs")]
    used = {item["Condition"] for section in sections[1:] for item in section.values() if "Condition" in item}
    used |= {arg[0] for function, arg in intrinsics(sections) if function == "Fn::If"}
    while True:
        bodies = [template["Conditions"][name] for name in used]
        more = {
            arg if f == "Condition" else arg[0]
            for f, arg in intrinsics(bodies)
            if f in ("Condition", "Fn::If")
        }
        if more <= used:
            return used
        used |= more


def _interface(interface: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The AWS::CloudFormation::Interface metadata limited to the remaining parameters, new ones first."""
    groups = [OrderedDict(Label={"default": NEW_PARAMETER_GROUP}, Parameters=list(NEW_PARAMETERS))]
    for group in interface.get("ParameterGroups", []):
        names = [n for n in group["Parameters"] if n in parameters and n not in NEW_PARAMETERS]
        if names:
            groups.append(OrderedDict(group, Parameters=names))
    labels = OrderedDict(
        (name, label)
        for name, label in interface.get("ParameterLabels", {}).items()
        if name in parameters and name not in NEW_PARAMETERS
    )
    return OrderedDict(ParameterGroups=groups, ParameterLabels=labels)


def check_resource_types(template: dict[str, Any], allowed: frozenset[str]) -> None:
    """Raise SarError naming every resource whose type SAR does not accept."""
    bad = sorted(f"{n} ({r['Type']})" for n, r in template["Resources"].items() if r["Type"] not in allowed)
    if bad:
        raise SarError(
            f"resource types not on the SAR allowlist: {', '.join(bad)}. SAR rejects the template "
            f"('unsupported resource types'): take the resource as a parameter instead (see REWRITES in "
            f"scripts/sar.py), or add the type to {ALLOWLIST.relative_to(ROOT)} only after finding it on "
            "https://docs.aws.amazon.com/serverlessrepo/latest/devguide/list-supported-resources.html"
        )


def check_metadata(template: dict[str, Any]) -> None:
    """Raise SarError unless the AWS::ServerlessRepo::Application metadata is publishable.

    Uses the serverlessrepo library that `sam publish` runs (required Name, Author, Description;
    LicenseUrl or LicenseBody, not both), and rejects intrinsic functions: SAR takes the values as
    they are written.
    """
    try:
        metadata = get_app_metadata(template)
        metadata.validate(["author", "description", "name"])
    except ServerlessRepoError as error:
        raise SarError(f"{error}: fix Metadata.AWS::ServerlessRepo::Application in template.yaml") from error
    for key, value in metadata.template_dict.items():
        values = value if key == "Labels" and isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            raise SarError(
                f"Metadata.AWS::ServerlessRepo::Application.{key} is {value!r}: SAR metadata must be "
                "literal strings (Labels a list of strings), without !Ref, !Sub or other intrinsics"
            )
    if len(metadata.labels or []) > 10:
        raise SarError(
            "Metadata.AWS::ServerlessRepo::Application.Labels has more than 10 labels: SAR allows 10"
        )


def derive(source: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """The SAR edition of the parsed template.yaml (long-form intrinsics, as yaml_parse returns them).

    Raises SarError if a required resource would be dropped, a reference to a dropped resource has no
    rewrite, or the result has a type off the allowlist or unpublishable metadata.
    """
    template: dict[str, Any] = _copy(source)
    dropped = _drops(template["Resources"], allowed)
    if lost := sorted(dropped.intersection(REQUIRED)):
        raise SarError(f"the SAR edition would lose {', '.join(lost)}: its type must be on the allowlist")
    errors: list[str] = []
    resources = OrderedDict()
    for name, resource in template["Resources"].items():
        if name in dropped:
            continue
        resource = rewrite(resource, dropped, f"Resources.{name}", errors)
        depends = resource.pop("DependsOn", [])
        depends = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in dropped]
        if depends:
            resource["DependsOn"] = depends
        resources[name] = resource
    template["Resources"] = resources
    if "Globals" in template:
        template["Globals"] = rewrite(template["Globals"], dropped, "Globals", errors)
    if errors:
        raise SarError("references to dropped resources are left; extend REWRITES:\n  " + "\n  ".join(errors))
    template["Outputs"] = OrderedDict(
        (name, output)
        for name, output in template.get("Outputs", {}).items()
        if not any(t[0] in dropped for t in references(output))
    )

    used = _used_conditions(template)
    template["Conditions"] = OrderedDict(
        (n, c) for n, c in template.get("Conditions", {}).items() if n in used
    )
    names = {
        t[0] for t in references([template[k] for k in ("Globals", "Resources", "Outputs", "Conditions")])
    }
    parameters = _copy(NEW_PARAMETERS)
    parameters.update((n, p) for n, p in template["Parameters"].items() if n in names and n not in parameters)
    for name, description in DESCRIPTIONS.items():
        if name in parameters:
            parameters[name]["Description"] = description
    template["Parameters"] = parameters
    # A rule that names a removed or redefined parameter guarded the create-everything mode only.
    template["Rules"] = OrderedDict(
        (name, rule)
        for name, rule in template.get("Rules", {}).items()
        if all(t[0] in parameters and t[0] not in NEW_PARAMETERS for t in references(rule))
    )
    for section in ("Conditions", "Rules", "Outputs"):
        if not template[section]:
            del template[section]
    if "AWS::CloudFormation::Interface" in template.get("Metadata", {}):
        interface = template["Metadata"]["AWS::CloudFormation::Interface"]
        template["Metadata"]["AWS::CloudFormation::Interface"] = _interface(interface, parameters)

    check_resource_types(template, allowed)
    check_metadata(template)
    return template


def derive_file(source: Path = TEMPLATE, out: Path = OUT) -> dict[str, Any]:
    """Derive out from source; local paths in out stay relative, now to out's directory."""
    derived = derive(yaml_parse(source.read_text(encoding="utf-8")), load_allowlist())
    move_template(str(source), str(out), derived)
    return derived


def _run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    if subprocess.run(command, check=False).returncode != 0:
        raise SarError(f"{command[0]} {command[1]} failed (its output is above)")


def publish(bucket: str, region: str | None, semantic_version: str | None, out: Path = OUT) -> None:
    """derive, then sam build, sam package (to bucket) and sam publish the SAR edition."""
    derive_file(TEMPLATE, out)
    build_dir = out.parent / ".aws-sam"
    packaged = out.parent / "packaged.yaml"
    region_args = ["--region", region] if region else []
    _run(["sam", "build", "--template-file", str(out), "--build-dir", str(build_dir)])
    package = ["sam", "package", "--template-file", str(build_dir / "template.yaml"), "--s3-bucket", bucket]
    _run([*package, "--output-template-file", str(packaged), *region_args])
    version_args = ["--semantic-version", semantic_version] if semantic_version else []
    _run(["sam", "publish", "--template", str(packaged), *region_args, *version_args])
    print(
        "\nNext steps:\n"
        "  1. The application is private. Share it in the SAR console, or make it public with\n"
        "     aws serverlessrepo put-application-policy --application-id <arn above> \\\n"
        "       --statements Principals='*',Actions=Deploy\n"
        "  2. Deploy it (console, or aws serverlessrepo create-cloud-formation-change-set) with an existing\n"
        "     access point, its file system and bucket, subnets with a mount target in their AZs, and\n"
        "     security groups allowing TCP 2049; acknowledge CAPABILITY_IAM (each function gets a role) and\n"
        "     CAPABILITY_RESOURCE_POLICY (the janitor schedule's invoke permission)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    derive_cmd = commands.add_parser("derive", help="write the SAR edition of template.yaml")
    derive_cmd.add_argument("--out", type=Path, default=OUT, help=f"default: {OUT.relative_to(ROOT)}")
    publish_cmd = commands.add_parser("publish", help="derive, build, package and publish to SAR")
    publish_cmd.add_argument(
        "--s3-bucket",
        required=True,
        help="bucket for the packaged code, in the publishing Region; its bucket policy must allow "
        "serverlessrepo.amazonaws.com s3:GetObject",
    )
    publish_cmd.add_argument("--region", help="SAR Region (default: your AWS configuration's)")
    publish_cmd.add_argument("--semantic-version", help="overrides SemanticVersion in the metadata")
    args = parser.parse_args(argv)
    try:
        if args.command == "derive":
            derived = derive_file(TEMPLATE, args.out)
            print(f"wrote {args.out} ({len(derived['Resources'])} resources)")
        else:
            publish(args.s3_bucket, args.region, args.semantic_version)
    except SarError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
