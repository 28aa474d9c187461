"""Checklist building blocks shared by verify and preflight: results, the step decorator, the printer."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum, auto
from typing import TYPE_CHECKING, Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


class Status(StrEnum):
    PASS = auto()
    FAIL = auto()
    WARN = auto()
    SKIP = auto()


@dataclass(frozen=True)
class StepResult:
    """One checklist line. ``data`` carries what later steps need (outputs, mount targets, key)."""

    name: str
    status: Status
    detail: str
    remediation: str = ""
    data: Any = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.status is not Status.FAIL


class StepFailure(Exception):
    """Raised inside a step: becomes a FAIL line with this detail and remediation."""

    def __init__(self, detail: str, remediation: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.remediation = remediation


@dataclass(frozen=True)
class Clock:
    """Wall clock (epoch seconds) and sleep; tests inject fakes so bounded waits take no time."""

    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def error_text(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Unknown')}: {error.get('Message', '')}".rstrip(": ")


def option(flags: str) -> str:
    """Command-line options (``--region <region>``) as the user gives them: to the script as they are;
    under make, the way the target that runs it takes them (its recipe exports OPTIONS_HINT, a template
    such as ``ARGS="%s"`` for `make verify` and `make preflight`)."""
    template = os.environ.get("OPTIONS_HINT", "")
    return template.replace("%s", flags) if "%s" in template else flags


def stack_options() -> str:
    """The options that say which stack verify looks at, and where: ``--stack``, ``--region``, ``--profile``
    (`make verify` takes the stack as STACK=)."""
    where = option("--region <region> --profile <profile>")
    return f"STACK=<name> {where}" if "OPTIONS_HINT" in os.environ else f"--stack <name> {where}"


def connect_fix() -> str:
    return (
        f"configure credentials ({option('--profile <profile>')}, or AWS_ACCESS_KEY_ID/"
        f"AWS_SECRET_ACCESS_KEY) and a Region ({option('--region <region>')}), and check network access to "
        "the AWS API endpoints"
    )


# Services of the non-EC2 calls the checks make; every other call is an ec2:Describe*.
_SERVICES = {
    "DescribeStacks": "cloudformation",
    "ListStackResources": "cloudformation",
    "GetFileSystem": "s3files",
    "ListMountTargets": "s3files",
    "GetFunctionConfiguration": "lambda",
    "GetFunctionConcurrency": "lambda",
    "GetAccountSettings": "lambda",
    "GetObject": "s3",
    "FilterLogEvents": "logs",
}


def _iam_action(operation: str) -> str:
    return f"{_SERVICES.get(operation, 'ec2')}:{operation}"


def step[**P](name: str) -> Callable[[Callable[P, StepResult]], Callable[P, StepResult]]:
    """Turn StepFailure and unexpected AWS API errors raised by a step into a FAIL result."""

    def decorate(check: Callable[P, StepResult]) -> Callable[P, StepResult]:
        @functools.wraps(check)
        def run(*args: P.args, **kwargs: P.kwargs) -> StepResult:
            try:
                return check(*args, **kwargs)
            except StepFailure as exc:
                return StepResult(name, Status.FAIL, exc.detail, exc.remediation)
            except ClientError as exc:
                fix = (
                    "the resource named above does not exist in this account/Region: check "
                    f"{stack_options()}, or redeploy"
                    if "NotFound" in exc.response.get("Error", {}).get("Code", "")
                    else f"allow {_iam_action(exc.operation_name)} to the identity running verify.py"
                )
                return StepResult(name, Status.FAIL, f"{exc.operation_name} failed: {error_text(exc)}", fix)
            except BotoCoreError as exc:
                return StepResult(name, Status.FAIL, str(exc), connect_fix())

        return run

    return decorate


def skip(name: str, reason: str) -> StepResult:
    return StepResult(name, Status.SKIP, reason)


def print_checklist(results: Sequence[StepResult], out: TextIO | None = None) -> None:
    """Print ``[STATUS] name  detail`` per step, a ``fix:`` line under each FAIL/WARN, and a summary."""
    out = out or sys.stdout
    width = max(len(r.name) for r in results)
    for r in results:
        print(f"[{r.status.name}] {r.name:<{width}}  {r.detail}", file=out)
        if r.status in (Status.FAIL, Status.WARN) and r.remediation:
            print(f"       fix: {r.remediation}", file=out)
    counts = Counter(r.status for r in results)
    print(", ".join(f"{counts[s]} {s.name.lower()}" for s in Status), file=out)
