"""The deploy's effective parameters and the Lambda concurrency they reserve, read from the templates.

Effective parameters, as ``sam deploy --config-env ENV`` resolves them: the template's defaults, then
(on an update) the stack's previous values, then ``parameter_overrides`` of samconfig.toml's
environment, then what preflight was given on the command line (a what-if layer).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from samcli.cli.types import CfnParameterOverridesType
from samcli.yamlhelper import yaml_parse

if TYPE_CHECKING:
    from collections.abc import Mapping

REPO = Path(__file__).resolve().parents[2]
SERVERLESS_FUNCTION = "AWS::Serverless::Function"
FUNCTION_TYPES = (SERVERLESS_FUNCTION, "AWS::Lambda::Function")
# Nested templates that sam deploy uploads from a local path: resource type -> the property naming it.
NESTED_TEMPLATES = {"AWS::Serverless::Application": "Location", "AWS::CloudFormation::Stack": "TemplateURL"}


class ConfigError(Exception):
    """samconfig.toml, the overrides or a template cannot be read or evaluated; the message says where."""


class _Unresolved(Exception):
    """An intrinsic function preflight cannot evaluate before deploying (GetAtt, Sub, a pseudo parameter)."""


@dataclass(frozen=True)
class SamConfig:
    """The settings of one samconfig.toml environment that decide where and what sam deploy deploys."""

    env: str
    path: Path
    stack_name: str | None = None
    region: str | None = None
    profile: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)


def parse_overrides(value: Any, where: str) -> dict[str, str]:
    """Parse parameter overrides exactly as sam deploy does ("K=V K2=V2", lists, ParameterKey=..)."""
    try:
        parsed: dict[str, str] = CfnParameterOverridesType().convert(value, None, None)
    except click.BadParameter as exc:
        raise ConfigError(f"{where}: {exc.message}") from exc
    return parsed


def read_samconfig(path: Path, env: str) -> SamConfig:
    """``[env.global.parameters]`` overlaid with ``[env.deploy.parameters]``, as sam merges them."""
    if not path.is_file():
        if env == "default":
            return SamConfig(env, path)
        raise ConfigError(f"{path} not found, so it has no [{env}] environment")
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if env not in document and env != "default":
        known = ", ".join(k for k, v in document.items() if isinstance(v, dict)) or "none"
        raise ConfigError(f"{path} has no [{env}] environment (it has: {known})")
    section = document.get(env, {})
    settings = section.get("global", {}).get("parameters", {}) | section.get("deploy", {}).get(
        "parameters", {}
    )
    return SamConfig(
        env=env,
        path=path,
        stack_name=settings.get("stack_name"),
        region=settings.get("region"),
        profile=settings.get("profile"),
        overrides=parse_overrides(
            settings.get("parameter_overrides"), f"{path.name} [{env}] parameter_overrides"
        ),
    )


def load_template(path: Path) -> dict[str, Any]:
    try:
        template = yaml_parse(path.read_text())
    except Exception as exc:  # OSError or any YAML/JSON error: all mean "cannot read it"
        raise ConfigError(f"cannot read template {path}: {exc}") from exc
    if not isinstance(template, dict):
        raise ConfigError(f"{path} is not a CloudFormation template (no mapping at the top)")
    return template


def defaults(template: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: _text(spec["Default"])
        for name, spec in (template.get("Parameters") or {}).items()
        if isinstance(spec, dict) and "Default" in spec
    }


@dataclass(frozen=True)
class Parameters:
    """Effective parameter values and, for each, the layer it came from (for the printed summary)."""

    values: dict[str, str]
    sources: dict[str, str]
    ignored: tuple[str, ...] = ()


def effective_parameters(
    template: Mapping[str, Any], layers: list[tuple[str, Mapping[str, str]]]
) -> Parameters:
    """Template defaults overlaid with each (label, values) layer in order; like sam deploy, names the
    template does not declare are dropped (and reported as ignored).
    """
    declared = set(template.get("Parameters") or {})
    values = defaults(template)
    sources = dict.fromkeys(values, "template default")
    ignored: list[str] = []
    for label, layer in layers:
        for name, value in layer.items():
            if name in declared:
                values[name], sources[name] = value, label
            elif name not in ignored:
                ignored.append(name)
    return Parameters(values, sources, tuple(ignored))


@dataclass(frozen=True)
class Reservation:
    """A function's ReservedConcurrentExecutions as deployed: None = no reservation, 0 = never runs."""

    function: str
    amount: int | None


def total(found: list[Reservation]) -> int:
    return sum(r.amount or 0 for r in found)


def reservations(
    path: Path, params: Mapping[str, str], prefix: str = "", unknown: frozenset[str] = frozenset()
) -> list[Reservation]:
    """Every function of the template (and of nested templates given by a local path) whose
    ReservedConcurrentExecutions is set, with the amount these parameters give it. ``unknown`` names
    parameters whose value is only known once deployed (a nested stack's GetAtt, say).
    """
    template = load_template(path)
    known = {k: v for k, v in (defaults(template) | dict(params)).items() if k not in unknown}
    scope = _Scope(template, known)
    shared = ((template.get("Globals") or {}).get("Function") or {}).get("ReservedConcurrentExecutions")
    found: list[Reservation] = []
    for name, resource in (template.get("Resources") or {}).items():
        kind, props = resource.get("Type"), resource.get("Properties") or {}
        if not scope.included(resource):
            continue
        if kind in FUNCTION_TYPES:
            node = props.get("ReservedConcurrentExecutions", shared if kind == SERVERLESS_FUNCTION else None)
            if node is not None:
                found.append(Reservation(prefix + name, scope.amount(node, f"{path.name}: {name}")))
        elif child := _local_template(path, name, kind, props):
            passed, unresolved = {}, set()
            for key, node in (props.get("Parameters") or {}).items():
                try:
                    passed[key] = _text(scope.value(node))
                except _Unresolved:
                    unresolved.add(key)
            found += reservations(child, passed, f"{prefix}{name}/", frozenset(unresolved))
    return found


def _local_template(parent: Path, name: str, kind: str, props: Mapping[str, Any]) -> Path | None:
    location = props.get(NESTED_TEMPLATES.get(kind, ""))
    if not isinstance(location, str) or "://" in location:
        return None  # a SAR application ({ApplicationId, ..}) or an uploaded template: not ours to read
    child = parent.parent / location
    if not child.is_file():
        raise ConfigError(f"{parent.name}: {name} points at {location}, which is not a file next to it")
    return child


def _text(value: Any) -> str:
    """Parameter values are strings to CloudFormation: YAML's 0, 0.0 and true compare as "0" and "true"."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


class _Scope:
    """Evaluates Ref, Fn::If and the condition functions against known parameter values."""

    def __init__(self, template: Mapping[str, Any], params: Mapping[str, str]) -> None:
        self._conditions = template.get("Conditions") or {}
        self._params = params
        self._known: dict[str, bool] = {}

    def value(self, node: Any) -> Any:
        if not (isinstance(node, dict) and len(node) == 1):
            return node
        ((function, argument),) = node.items()
        if function == "Ref":
            if argument == "AWS::NoValue":
                return None
            if argument in self._params:
                return self._params[argument]
        elif function == "Fn::If":
            condition, when_true, when_false = argument
            return self.value(when_true if self.condition(condition) else when_false)
        raise _Unresolved(f"{function} {argument}")

    def truth(self, node: Any) -> bool:
        ((function, argument),) = node.items()
        match function:
            case "Condition":
                return self.condition(argument)
            case "Fn::Equals":
                return bool(_text(self.value(argument[0])) == _text(self.value(argument[1])))
            case "Fn::Not":
                return not self.truth(argument[0])
            case "Fn::And":
                return all(self.truth(c) for c in argument)
            case "Fn::Or":
                return any(self.truth(c) for c in argument)
        raise _Unresolved(function)

    def condition(self, name: str) -> bool:
        if name not in self._known:
            if name not in self._conditions:
                raise ConfigError(f"condition {name} is used but not defined")
            self._known[name] = self.truth(self._conditions[name])
        return self._known[name]

    def included(self, resource: Mapping[str, Any]) -> bool:
        """A resource whose Condition cannot be evaluated counts as deployed (the safe side here)."""
        try:
            return "Condition" not in resource or self.condition(resource["Condition"])
        except _Unresolved:
            return True

    def amount(self, node: Any, where: str) -> int | None:
        try:
            value = self.value(node)
        except _Unresolved as exc:
            raise ConfigError(
                f"{where}: ReservedConcurrentExecutions depends on {exc}, unknown before the deploy"
            ) from exc
        try:
            return None if value is None else int(_text(value))
        except ValueError:
            raise ConfigError(f"{where}: ReservedConcurrentExecutions is {value!r}, not a number") from None
