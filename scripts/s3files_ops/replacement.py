"""Which parameter changes (and template edits) replace or delete the stack's storage and network,
derived at run time from the resource provider schemas cfn-lint ships (their ``createOnlyProperties``),
never from a kept list.

A resource is replaced when a create-only property changes. The deployed template is evaluated with
the stack's parameters, the new one with the new parameters: Ref/Fn::GetAtt of another resource
evaluate to that resource, marked when it is itself replaced (the VPC's CidrBlock replaces the VPC,
whose new id replaces the subnets, whose new ids replace the mount targets), and what cannot be known
before the deploy (Fn::GetAZs, Fn::Cidr of an unknown, a pseudo parameter) stays a symbol, equal on
both sides. A resource whose Condition turns false is deleted.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError
from samcli.yamlhelper import yaml_parse

from s3files_ops.checklist import Status, StepResult

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from botocore.client import BaseClient

PF_REPLACE = "No replacement of storage or network"
# Create-only properties are the same in every Region's schema; this one has every type the stack uses.
SCHEMA_REGION = "us-east-1"
GUARDED_EDIT = "undo the edit of those create-only properties in template.yaml"
NEW_STACK = (
    "deploy a new stack (another stack_name in a new samconfig.toml environment, make deploy ENV=<it>; "
    "it gets its own bucket and file system) and migrate the data"
)
# Resource type -> (what its replacement does, the safe way). Which change replaces which resource is
# derived; only what it means is written here. Other types (rules, routes, log groups) are not guarded.
GUARDED: dict[str, tuple[str, str]] = {
    "AWS::S3Files::AccessPoint": (
        "a new access point whose CreationPermissions do not change the existing root directory: with "
        "another owner every write fails with EACCES",
        "keep the value, or change it together with a new AccessPointRootPath (the new access point "
        "creates that directory for its owner) and copy the files there",
    ),
    "AWS::S3Files::FileSystem": (
        "a new file system on the same bucket while the old one still syncs it",
        NEW_STACK,
    ),
    "AWS::S3Files::MountTarget": (
        "the new mount target is created before the old one is deleted, but an AZ takes one mount target "
        "and a file system one VPC: the update fails and rolls back",
        f"keep the value, or {NEW_STACK}",
    ),
    "AWS::S3::Bucket": ("a new, empty bucket (the old one is retained)", NEW_STACK),
    "AWS::EC2::SecurityGroup": (
        "the old group waits for Lambda's network interfaces to be released: 25-40 minutes or more",
        "keep the value, or accept the wait: --allow-replace with its logical id",
    ),
    "AWS::EC2::VPC": (
        "a new VPC, so new subnets, security groups and mount targets",
        f"keep the value, or {NEW_STACK}",
    ),
    "AWS::EC2::Subnet": (
        "new subnets, so new mount targets (one per AZ: the update fails) and functions moved",
        f"keep the value, or {NEW_STACK}",
    ),
}


@functools.cache
def create_only(resource_type: str) -> tuple[tuple[str, ...], ...]:
    """The create-only property paths of a type (("PosixUser", "Uid"), ...); () for types without a
    provider schema (SAM's, custom resources)."""
    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(SCHEMA_REGION, resource_type)
    except ResourceNotFoundError:
        return ()
    paths = schema.schema.get("createOnlyProperties", [])
    return tuple(tuple(p.split("/")[2:]) for p in paths if p.startswith("/properties/"))


@dataclass(frozen=True)
class Replacement:
    """One guarded resource the change replaces (or deletes), and the create-only paths that changed."""

    resource: str
    resource_type: str
    paths: tuple[str, ...]  # "PosixUser/Uid", ...; empty when the resource is deleted

    @property
    def deleted(self) -> bool:
        return not self.paths


class _Evaluation:
    """The template's resources evaluated with one set of parameter values; ``marks`` says which
    resources are replaced (a reference to one then compares unequal to the reference before)."""

    def __init__(
        self,
        template: Mapping[str, Any],
        params: Mapping[str, str],
        marks: Callable[[str], bool] | None = None,
    ) -> None:
        self._template = template
        self._params = params
        self._conditions: dict[str, bool] = {}
        self._marks = marks

    def included(self, name: str) -> bool:
        condition = self._template["Resources"][name].get("Condition")
        return condition is None or self.condition(condition)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self._truth(self._template["Conditions"][name])
        return self._conditions[name]

    def _truth(self, node: Any) -> bool:
        ((function, argument),) = node.items()
        match function:
            case "Condition":
                return self.condition(argument)
            case "Fn::Equals":
                return bool(self.value(argument[0]) == self.value(argument[1]))
            case "Fn::Not":
                return not self._truth(argument[0])
            case "Fn::And":
                return all(self._truth(c) for c in argument)
            case "Fn::Or":
                return any(self._truth(c) for c in argument)
        raise ValueError(f"unknown condition function {function}")

    def _resource(self, name: str) -> tuple[str, str, bool]:
        return ("resource", name, bool(self._marks and self._marks(name)))

    def value(self, node: Any) -> Any:
        """The node with every intrinsic function evaluated as far as the parameters allow; scalars as
        CloudFormation passes them on (strings: YAML's 1000 and "1000" are the same value)."""
        if isinstance(node, list):
            return [v for v in map(self.value, node) if v is not None]
        if isinstance(node, bool):
            return str(node).lower()
        if not isinstance(node, dict):
            return str(node)
        if len(node) != 1 or not _is_function(next(iter(node))):
            return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not None}
        ((function, argument),) = node.items()
        match function:
            case "Ref":
                if argument == "AWS::NoValue":
                    return None
                if argument in self._params:
                    return self._params[argument]
                return (
                    self._resource(argument) if argument in self._template["Resources"] else ("ref", argument)
                )
            case "Fn::GetAtt":
                name, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return (*self._resource(name), attribute)
            case "Fn::If":
                condition, when_true, when_false = argument
                return self.value(when_true if self.condition(condition) else when_false)
            case "Fn::Sub":
                return self._sub(*(argument if isinstance(argument, list) else [argument, {}]))
            case "Fn::Join":
                delimiter, items = self.value(argument[0]), self.value(argument[1])
                if isinstance(items, list) and all(isinstance(i, str) for i in items):
                    return delimiter.join(items)
            case "Fn::Split":
                delimiter, text = self.value(argument[0]), self.value(argument[1])
                if isinstance(text, str):
                    return text.split(delimiter)
            case "Fn::Select":
                index, items = self.value(argument[0]), self.value(argument[1])
                if isinstance(items, list) and str(index).isdigit() and int(index) < len(items):
                    return items[int(index)]
        return (function, self.value(argument))  # unknown before the deploy: equal iff its inputs are

    def _sub(self, text: str, variables: Mapping[str, Any]) -> Any:
        parts: list[Any] = []
        rest = text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            parts.append(before)
            if name.startswith("!"):
                parts.append("${" + name[1:] + "}")
            elif name in variables:
                parts.append(self.value(variables[name]))
            elif name in self._params:
                parts.append(self._params[name])
            elif name.split(".")[0] in self._template["Resources"]:
                parts.append(self.value({"Fn::GetAtt": name}) if "." in name else self.value({"Ref": name}))
            else:
                parts.append(("ref", name))
        parts.append(rest)
        return "".join(parts) if all(isinstance(p, str) for p in parts) else ("Fn::Sub", parts)

    def create_only_values(self, name: str) -> dict[str, Any]:
        """Each create-only path of the resource -> its value here (None when absent)."""
        resource = self._template["Resources"][name]
        properties = self.value(resource.get("Properties") or {})
        values = {"/".join(path): _at(properties, path) for path in create_only(resource["Type"])}
        return values | {"(Type)": resource["Type"]}  # another type is another resource


def _is_function(key: str) -> bool:
    return key == "Ref" or key.startswith("Fn::")


def _at(node: Any, path: tuple[str, ...]) -> Any:
    for i, key in enumerate(path):
        if key == "*" and isinstance(node, list):
            return [_at(item, path[i + 1 :]) for item in node]
        if not isinstance(node, dict):
            return node  # an unknown symbol covers everything below it
        node = node.get(key)
    return node


def replacements(
    old_template: Mapping[str, Any],
    old: Mapping[str, str],
    new_template: Mapping[str, Any],
    new: Mapping[str, str],
) -> list[Replacement]:
    """The guarded resources of the stack deployed from ``old_template`` with ``old`` that deploying
    ``new_template`` with ``new`` replaces or deletes, in the deployed template's order."""
    before = _Evaluation(old_template, old)
    replaced: dict[str, tuple[str, ...]] = {}
    kept = old_template["Resources"].keys() & new_template["Resources"].keys()

    def changed(name: str) -> tuple[str, ...]:
        if name not in replaced:
            replaced[name] = ()  # no cycles in a valid template; this only stops a bad one
            was, now = before.create_only_values(name), after.create_only_values(name)
            paths = [p for p in was.keys() | now.keys() if was.get(p) != now.get(p)]
            # "PosixUser" changes whenever "PosixUser/Uid" does: name the most specific path only.
            replaced[name] = tuple(sorted(p for p in paths if not any(q.startswith(p + "/") for q in paths)))
        return replaced[name]

    after = _Evaluation(new_template, new, marks=lambda name: name in kept and bool(changed(name)))
    found = []
    for name, resource in old_template["Resources"].items():
        kind = resource.get("Type", "")
        if kind not in GUARDED or not before.included(name):
            continue
        if name not in kept or not after.included(name):
            found.append(Replacement(name, kind, ()))
        elif paths := changed(name):
            found.append(Replacement(name, kind, paths))
    return found


def parameters_reaching_create_only(template: Mapping[str, Any]) -> dict[str, set[str]]:
    """Parameter -> the guarded resources whose create-only properties (or Condition) it can reach,
    through any Fn::If branch and any chain of resources: the parameters a change of which the
    preflight must judge. Read from the template alone, whatever the values."""

    def names(node: Any) -> set[str]:
        if isinstance(node, list):
            return set().union(*map(names, node))
        if not isinstance(node, dict):
            return set()
        found: set[str] = set()
        for key, value in node.items():
            if key in ("Ref", "Condition") and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value.split(".")[0] if isinstance(value, str) else value[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {n.split(".")[0] for n in _sub_names(text)}
            if key == "Fn::If":
                found.add(value[0])
                found |= names(value[1:])
            else:
                found |= names(value)
        return found

    resources, conditions = template["Resources"], template.get("Conditions") or {}

    @functools.cache
    def reach(name: str) -> frozenset[str]:
        """The parameters that reach what ``name`` (a resource or a condition) is or depends on."""
        if name in conditions:
            sources = names(conditions[name])
        else:
            resource = resources[name]
            properties = resource.get("Properties") or {}
            sources = {resource["Condition"]} if "Condition" in resource else set()
            for path in create_only(resource.get("Type", "")):
                sources |= names(_raw_at(properties, path))
        found: set[str] = set()
        for source in sources:
            if source in template.get("Parameters", {}):
                found.add(source)
            elif source in conditions or source in resources:
                found |= reach(source)
        return frozenset(found)

    flows: dict[str, set[str]] = {}
    for name, resource in resources.items():
        if resource.get("Type") in GUARDED:
            for parameter in reach(name):
                flows.setdefault(parameter, set()).add(name)
    return flows


def _sub_names(text: str) -> list[str]:
    return [part.split("}")[0] for part in text.split("${")[1:] if not part.startswith("!")]


def _raw_at(node: Any, path: tuple[str, ...]) -> Any:
    """The node at ``path`` in the template as written; an intrinsic function on the way covers it."""
    for key in path:
        if not isinstance(node, dict) or (len(node) == 1 and _is_function(next(iter(node)))):
            return node
        node = node.get(key)
    return node


def check_replacements(
    old_template: Mapping[str, Any],
    old: Mapping[str, str],
    new_template: Mapping[str, Any],
    new: Mapping[str, str],
    allowed: frozenset[str] = frozenset(),
) -> StepResult:
    """FAIL when deploying ``new_template`` with ``new`` over the stack (``old_template`` with ``old``)
    replaces or deletes a guarded resource not in ``allowed``, naming each changed parameter (or the
    template edits), the resources, the consequence and the safe way; WARN for the allowed ones."""
    changed = sorted(k for k in new if k in old and old[k] != new[k])
    everything = {r.resource: r for r in replacements(old_template, old, new_template, new)}
    if not everything:
        what = f"{', '.join(changed)} change" if changed else "no parameter changes"
        return StepResult(PF_REPLACE, Status.PASS, f"{what}, no create-only property of a guarded resource")
    # Who is to blame: the template edits (with the deployed values), then each changed parameter alone.
    carried = {k: old.get(k, v) for k, v in new.items()}
    blamed: dict[str, list[Replacement]] = {}
    for r in replacements(old_template, old, new_template, carried):
        blamed.setdefault("template edits", []).append(everything.get(r.resource, r))
    for parameter in changed:
        for r in replacements(new_template, carried, new_template, {**carried, parameter: new[parameter]}):
            blamed.setdefault(parameter, []).append(everything.get(r.resource, r))
    unexplained = set(everything) - {r.resource for found in blamed.values() for r in found}
    if unexplained:  # only the combination replaces them
        blamed[" + ".join(changed)] = [everything[name] for name in everything if name in unexplained]
    lines, fixes = [], []
    for cause, found in blamed.items():
        values = f" {old[cause]!r} -> {new[cause]!r}" if cause in changed else ""
        what = ", ".join(
            f"{r.resource} ({r.resource_type}; "
            + ("deleted" if r.deleted else f"create-only {', '.join(r.paths)}")
            + ")"
            for r in found
        )
        meaning = "; ".join(dict.fromkeys(GUARDED[r.resource_type][0] for r in found))
        lines.append(
            f"{cause}{values} {'replace' if cause == 'template edits' else 'replaces'} {what}: {meaning}"
        )
        safe = "; ".join(dict.fromkeys(GUARDED[r.resource_type][1] for r in found))
        fixes.append(f"{cause}: {GUARDED_EDIT if cause == 'template edits' else safe}")
    refused = [name for name in everything if name not in allowed]
    detail = " | ".join(lines)
    if not refused:
        return StepResult(
            PF_REPLACE,
            Status.WARN,
            f"replacing on purpose (--allow-replace {','.join(sorted(allowed))}): {detail}",
            "the stack policy is lifted for these resources during this deploy only",
        )
    ids = ",".join(refused)
    override = (
        f"or, deliberately: --allow-replace {ids} (make deploy ALLOW_REPLACE={ids}), which also lifts "
        "the stack policy for them during that deploy"
    )
    return StepResult(PF_REPLACE, Status.FAIL, detail, " | ".join([*fixes, override]))


def deployed_template(cloudformation: BaseClient, stack: str) -> dict[str, Any] | None:
    """The stack's template as submitted (GetTemplate, stage Original); None when it cannot be read."""
    try:
        body = cloudformation.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"]
    except ClientError:
        return None
    parsed = body if isinstance(body, dict) else yaml_parse(body)  # botocore decodes JSON bodies itself
    return parsed if isinstance(parsed, dict) and isinstance(parsed.get("Resources"), dict) else None
