"""Load, transform, resolve and compose the two templates offline, so checks can look at concrete
CloudFormation.

`transform(sam, overrides)` (tests/testkit.py) runs samtranslator in-process, offline.
`resolve(cfn, overrides)` then applies the conditions the way CloudFormation would for those
parameter values: resources and outputs whose condition is false disappear, `Fn::If` picks its
branch, `AWS::NoValue` vanishes, parameter `Ref`s become their values (also inside `Fn::Sub`
strings), and `Fn::Join`/`Fn::Split`/`Fn::Select`/`Fn::Sub` over literals are computed.
Everything else (`Fn::GetAtt`, resource `Ref`s, pseudo parameters) stays as written.
`compose(root, functions)` puts the functions stack (functions/template.yaml) inside the resolved
root stack the way CloudFormation links them: each of its parameters becomes the value the root
passes (a literal, or an expression over the root's resources), every resource of it inherits the
nested stack's DependsOn, and the root's `Fn::GetAtt Functions.Outputs.X` becomes the output's value.
The checks then see one template, in which the functions mount `!GetAtt AccessPoint.AccessPointArn`.

Example:
    root = resolve(transform(load_sam_template(), overrides), overrides)
    stack = compose(root, transform(load_sam_template(FUNCTIONS_TEMPLATE), {}))
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from samcli.yamlhelper import yaml_parse

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
FUNCTIONS_TEMPLATE = REPO / "functions" / "template.yaml"
NESTED_ID = "Functions"
# What template.yaml creates and passes to the functions template, which has no default for them.
LINKS = frozenset({"AccessPointArn", "FileSystemArn", "BucketName", "SubnetIds", "SecurityGroupIds"})

EXISTING_VPC = {
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
}
# Parameter overrides of the modes every check runs against: the defaults (a created VPC, which looks
# the S3 prefix list up itself, x86_64), an existing VPC with every optional setting given (arm64),
# one without S3PrefixListId (direct reads forced off), direct reads turned off, and AZ ids chosen.
MODES: dict[str, dict[str, str]] = {
    "create-vpc": {},
    "existing-vpc": {
        **EXISTING_VPC,
        "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:alarms",
        "S3PrefixListId": "pl-63a5400a",
        "ReservedConcurrency": "25",
        "PosixSecondaryGids": "1001,4294967295",
        # Graviton, and tracing an existing VPC may have a path for: the checks run for both settings.
        "Architecture": "arm64",
        "Tracing": "Active",
    },
    "existing-vpc-no-prefix-list": EXISTING_VPC,
    "no-direct-reads": {"DirectS3Read": "DISABLED"},
    "chosen-azs": {"AvailabilityZoneIdA": "use1-az1", "AvailabilityZoneIdB": "use1-az2"},
}

_NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def load_sam_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The SAM template as plain dicts, short-form intrinsics expanded (`!Ref x` -> `{"Ref": "x"}`)."""
    return yaml_parse(path.read_text())


def parameter_values(template: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Every parameter's effective value: the override, else the default. List parameters become
    lists: a string is split on commas, a `Fn::Join` on "," gives its items, another intrinsic
    function is the one item. A value that is an intrinsic function (a nested stack's parameter
    given by its parent) stays as it is.
    """
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name not in overrides and "Default" not in spec:
            raise ValueError(
                f"parameter {name} has no value and no Default: CloudFormation rejects the stack"
            )
        value = overrides.get(name, spec.get("Default"))
        listed = spec["Type"] == "CommaDelimitedList" or spec["Type"].startswith("List<")
        if isinstance(value, dict) and listed:
            join = value.get("Fn::Join")
            values[name] = join[1] if join and join[0] == "," else [value]
        elif isinstance(value, dict):
            values[name] = value
        else:
            values[name] = str(value).split(",") if listed else str(value)
    return values


def resolve(template: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`template` as CloudFormation would see it with these parameter values (see module doc)."""
    resolver = _Resolver(template, parameter_values(template, overrides))
    resolved: dict[str, Any] = {"Parameters": resolver.params, "Resources": {}, "Outputs": {}}
    for section in ("Resources", "Outputs"):
        for name, body in template.get(section, {}).items():
            if "Condition" not in body or resolver.condition(body["Condition"]):
                resolved[section][name] = resolver.value(body)
    return resolved


def compose(root: dict[str, Any], functions: dict[str, Any], nested_id: str = NESTED_ID) -> dict[str, Any]:
    """The resolved `root` with its nested stack `nested_id` replaced by the resources of
    `functions` (transformed, unresolved) resolved with the parameters the root passes (module doc).
    """
    stack = root["Resources"][nested_id]
    # CloudFormation makes the nested stack wait for what it names (DependsOn) and for every resource its
    # properties reference: both are the dependencies its resources inherit.
    inherited = as_list(stack.get("DependsOn", [])) + sorted(
        _referenced(stack["Properties"], root["Resources"].keys()) - set(as_list(stack.get("DependsOn", [])))
    )
    given = {name: _select(value) for name, value in stack["Properties"].get("Parameters", {}).items()}
    if unknown := sorted(given.keys() - functions.get("Parameters", {}).keys()):
        raise ValueError(f"{nested_id} passes {unknown}, which the functions template does not declare")
    child = resolve(functions, given)
    if clashes := sorted(child["Resources"].keys() & root["Resources"].keys()):
        raise ValueError(f"logical ids in both templates: {clashes}")
    resources = {rid: body for rid, body in root["Resources"].items() if rid != nested_id}
    for rid, body in child["Resources"].items():
        depends = as_list(body.get("DependsOn", [])) + inherited
        resources[rid] = {**body, "DependsOn": depends} if depends else body
    composed = {**root, "Resources": resources}
    return _replace_outputs(composed, nested_id, child["Outputs"])


def _referenced(node: Any, resources: Any) -> set[str]:
    """The resources among `resources` that `node` references (Ref, Fn::GetAtt, Fn::Sub variables)."""
    if isinstance(node, list):
        return set().union(*(_referenced(item, resources) for item in node))
    if isinstance(node, str) or not isinstance(node, dict):
        return set()
    found: set[str] = set()
    if isinstance(node.get("Ref"), str):
        found.add(node["Ref"])
    if isinstance(node.get("Fn::GetAtt"), list):
        found.add(node["Fn::GetAtt"][0])
    sub = node.get("Fn::Sub")
    if isinstance(sub, str) or (isinstance(sub, list) and isinstance(sub[0], str)):
        text = sub if isinstance(sub, str) else sub[0]
        found |= {name.split(".")[0] for name in _SUB_VARIABLE.findall(text)}
    found |= _referenced(list(node.values()), resources)
    return found & set(resources)


def _select(value: Any) -> Any:
    """`Fn::Select` of a literal index over a list is that item, whatever the other items are (a
    reference among them only adds a dependency: see compose)."""
    if isinstance(value, dict) and list(value) == ["Fn::Select"]:
        index, items = value["Fn::Select"]
        if isinstance(items, list) and str(index).isdigit():
            return _select(items[int(index)])
    return value


def _replace_outputs(node: Any, nested_id: str, outputs: dict[str, Any]) -> Any:
    """`node` with every `Fn::GetAtt [nested_id, Outputs.X]` replaced by the value of output X."""
    if isinstance(node, list):
        return [_replace_outputs(item, nested_id, outputs) for item in node]
    if not isinstance(node, dict):
        return node
    target = node.get("Fn::GetAtt") if len(node) == 1 else None
    if isinstance(target, list) and target[0] == nested_id and target[1].startswith("Outputs."):
        name = target[1].removeprefix("Outputs.")
        if name not in outputs:
            raise ValueError(
                f"the functions template has no output {name} (root: !GetAtt {'.'.join(target)})"
            )
        return outputs[name]["Value"]
    return {key: _replace_outputs(value, nested_id, outputs) for key, value in node.items()}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class _Resolver:
    def __init__(self, template: dict[str, Any], params: dict[str, Any]) -> None:
        self.conditions: dict[str, Any] = template.get("Conditions", {})
        self.params = params

    def condition(self, name: str) -> bool:
        return self._truth(self.conditions[name])

    def _truth(self, expr: dict[str, Any]) -> bool:
        [(key, arg)] = expr.items()
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Equals":
            return self.value(arg[0]) == self.value(arg[1])
        if key == "Fn::Not":
            return not self._truth(arg[0])
        if key == "Fn::And":
            return all(self._truth(item) for item in arg)
        if key == "Fn::Or":
            return any(self._truth(item) for item in arg)
        raise ValueError(f"unsupported condition function {key}: extend _Resolver._truth")

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (self.value(item) for item in node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            [(key, arg)] = node.items()
            if key == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return _NO_VALUE
                return self.params.get(arg, node)
            if key == "Fn::Sub" and isinstance(arg, str):
                return {key: _substitute(arg, self.params)}
            if key in ("Fn::Join", "Fn::Split", "Fn::Select", "Fn::Sub"):
                return _compute(key, self.value(arg))
        resolved = {key: self.value(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}


def _compute(key: str, arg: Any) -> Any:
    """The function's result when its arguments are literals, else the function itself."""
    if key == "Fn::Join" and isinstance(arg[1], list) and all(isinstance(x, str) for x in arg[1]):
        return arg[0].join(arg[1])
    if key == "Fn::Split" and isinstance(arg[1], str):
        return arg[1].split(arg[0])
    if key == "Fn::Select" and isinstance(arg[1], list) and all(isinstance(x, str) for x in arg[1]):
        return arg[1][int(arg[0])]
    if key == "Fn::Sub" and isinstance(arg, list) and all(isinstance(v, str) for v in arg[1].values()):
        names = set(_SUB_VARIABLE.findall(arg[0]))
        if names <= arg[1].keys():
            return _SUB_VARIABLE.sub(lambda m: arg[1][m.group(1)], arg[0])
    return {key: arg}


def _substitute(text: str, params: dict[str, Any]) -> str:
    """`text` with the string parameters it names filled in, and those given as a `Ref` or
    `Fn::GetAtt` by a parent stack turned into that variable; other variables stay `${...}`."""

    def value(match: re.Match[str]) -> str:
        found = params.get(match.group(1))
        if isinstance(found, dict) and "Ref" in found:
            return f"${{{found['Ref']}}}"
        if isinstance(found, dict) and "Fn::GetAtt" in found:
            return f"${{{'.'.join(found['Fn::GetAtt'])}}}"
        return found if isinstance(found, str) else match.group(0)

    return _SUB_VARIABLE.sub(value, text)


def allowed(spec: dict[str, Any], value: str) -> bool:
    """Whether CloudFormation would accept `value` for a parameter declared as `spec`."""
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        return False
    if not spec.get("MinLength", 0) <= len(value) <= spec.get("MaxLength", len(value)):
        return False
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        return False
    if "MinValue" in spec and float(value) < spec["MinValue"]:
        return False
    return "MaxValue" not in spec or float(value) <= spec["MaxValue"]
