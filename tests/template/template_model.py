"""Load, transform and resolve template.yaml offline, so checks can look at concrete CloudFormation.

`transform(sam, overrides)` (tests/testkit.py) runs samtranslator in-process, offline.
`resolve(cfn, overrides)` then applies the conditions the way CloudFormation would for those
parameter values: resources and outputs whose condition is false disappear, `Fn::If` picks its
branch, `AWS::NoValue` vanishes, parameter `Ref`s become their values (also inside `Fn::Sub`
strings), and `Fn::Join`/`Fn::Split`/`Fn::Select`/`Fn::Sub` over literals are computed.
Everything else (`Fn::GetAtt`, resource `Ref`s, pseudo parameters) stays as written.

Example:
    cfn = resolve(transform(load_sam_template(), {"VpcId": "vpc-0123456789abcdef0"}), {...})
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from samcli.yamlhelper import yaml_parse

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"

# Parameter overrides of the modes every check runs against.
MODES: dict[str, dict[str, str]] = {
    "create-vpc": {},
    "existing-vpc": {
        "VpcId": "vpc-0123456789abcdef0",
        "SubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
        "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:alarms",
        "S3PrefixListId": "pl-63a5400a",
    },
    "no-direct-reads": {"DirectS3Read": "DISABLED"},
}

_NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def load_sam_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The SAM template as plain dicts, short-form intrinsics expanded (`!Ref x` -> `{"Ref": "x"}`)."""
    return yaml_parse(path.read_text())


def parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Every parameter's effective value: the override, else the default (lists split on commas)."""
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        raw = str(overrides.get(name, spec.get("Default", "")))
        values[name] = raw.split(",") if spec["Type"] == "CommaDelimitedList" else raw
    return values


def resolve(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """`template` as CloudFormation would see it with these parameter values (see module doc)."""
    resolver = _Resolver(template, parameter_values(template, overrides))
    resolved: dict[str, Any] = {"Parameters": resolver.params, "Resources": {}, "Outputs": {}}
    for section in ("Resources", "Outputs"):
        for name, body in template.get(section, {}).items():
            if "Condition" not in body or resolver.condition(body["Condition"]):
                resolved[section][name] = resolver.value(body)
    return resolved


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
    """`text` with the string parameters it names filled in; other variables stay `${...}`."""

    def value(match: re.Match[str]) -> str:
        found = params.get(match.group(1))
        return found if isinstance(found, str) else match.group(0)

    return _SUB_VARIABLE.sub(value, text)


def allowed(spec: dict[str, Any], value: str) -> bool:
    """Whether CloudFormation would accept `value` for a parameter declared as `spec`."""
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        return False
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        return False
    if "MinValue" in spec and float(value) < spec["MinValue"]:
        return False
    return "MaxValue" not in spec or float(value) <= spec["MaxValue"]
