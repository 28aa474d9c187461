"""The functions of the application, read from functions/template.yaml: the one list of them.

Everything that goes over the functions (`make invoke`, the template checks, the end-to-end and
`sam local` tiers, the bench, verify's required outputs) takes them from here, so a function added
to the template (`make new-function NAME=report`) joins them all without another edit.

A function is an AWS::Serverless::Function named ``<Name>Function`` whose code is in
``functions/<name>/`` (``CodeUri: <name>/``); ``<name>`` is also its sample events' prefix
(``events/<name>.json``, ``events/<name>-*.json``) and its POWERTOOLS_SERVICE_NAME. Its
``Metadata: MountAccess`` says what it does on the mount: ``read``, or ``read-write`` (it holds
s3files:ClientWrite; the template checks hold its policy to that).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS_TEMPLATE = REPO / "functions" / "template.yaml"
# A function's name: its folder, its events' prefix (so no "-"), and its logical id once capitalized.
NAME = re.compile(r"[a-z][a-z0-9]{1,29}")
MOUNT_ACCESS = ("read", "read-write")


@dataclass(frozen=True)
class Function:
    name: str
    logical_id: str
    writes: bool  # MountAccess read-write: it holds s3files:ClientWrite
    scheduled: bool  # runs on a Schedule event; the others serve requests (ReservedConcurrency)


def logical_id(name: str) -> str:
    """The logical id of the function whose code is functions/<name>/."""
    return f"{name.capitalize()}Function"


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !If, !Sub...) read as their plain values."""


def _untagged(loader: _Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


_Loader.add_multi_constructor("!", _untagged)


def load_template(path: Path) -> dict[str, Any]:
    """A CloudFormation/SAM template as plain data (intrinsics lose their tags: enough for names)."""
    data = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a YAML mapping: restore it from git.")
    return data


def read_functions(template: Path = FUNCTIONS_TEMPLATE) -> dict[str, Function]:
    """The functions of `template` by name, in template order. ValueError, naming the resource and
    the fix, for a function that breaks the layout above."""
    functions: dict[str, Function] = {}
    for rid, resource in load_template(template).get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        name = str(resource.get("Properties", {}).get("CodeUri", "")).removesuffix("/")
        if not NAME.fullmatch(name) or logical_id(name) != rid:
            raise ValueError(
                f"{template}: {rid}: CodeUri {name + '/'!r} does not match its logical id: a function "
                f"<Name>Function has its code in functions/<name>/ (CodeUri: <name>/, <name> matching "
                f"{NAME.pattern})"
            )
        access = resource.get("Metadata", {}).get("MountAccess")
        if access not in MOUNT_ACCESS:
            raise ValueError(
                f"{template}: {rid}: Metadata MountAccess is {access!r}: set it to read or read-write "
                f"(read-write if the function commits or deletes files)"
            )
        events = resource.get("Properties", {}).get("Events") or {}
        scheduled = any(e.get("Type") == "Schedule" for e in events.values())
        functions[name] = Function(name, rid, access == "read-write", scheduled)
    return functions


@functools.cache
def functions() -> dict[str, Function]:
    """The functions of functions/template.yaml (read once per process)."""
    return read_functions()


def function_outputs(function: Function) -> tuple[str, str, str]:
    """The outputs every function has: its name, its ARN and its log group's name."""
    base = function.logical_id.removesuffix("Function")
    return f"{function.logical_id}Name", f"{function.logical_id}Arn", f"{base}LogGroupName"


def function_of_event(event_file: Path, names: dict[str, Any]) -> str | None:
    """The function an event file is named for (`reader-list.json` -> reader), or None."""
    name = event_file.name.removesuffix(".json").split("-")[0]
    return name if event_file.name.endswith(".json") and name in names else None
