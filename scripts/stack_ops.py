"""The deploy's stack policy and the delete's follow-up, for the stack of a samconfig.toml environment.

Usage::

    stack_ops.py policy [--config-env ENV] [--allow-replace ID,..]   before and after sam deploy
    stack_ops.py delete-plan [--config-env ENV]                       before sam delete
    stack_ops.py wait-delete [--config-env ENV] [--max-wait 7200]     after sam delete

policy sets infra/stack-policy.json (without the --allow-replace ids) on the stack; delete-plan says
what a delete keeps and waits for; wait-delete follows the delete past sam delete's 60-minute waiter
and explains a refused delete (s3files_ops.lifecycle). Exit codes: 0 done, 1 failed, 2 bad
configuration or still deleting after --max-wait.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from s3files_ops.account import resolve_target
from s3files_ops.checklist import Clock, error_text, stderr_progress
from s3files_ops.lifecycle import apply_stack_policy, delete_plan, wait_deleted
from s3files_ops.params import REPO, ConfigError, read_samconfig

if TYPE_CHECKING:
    from collections.abc import Sequence

    from botocore.client import BaseClient


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["policy", "delete-plan", "wait-delete"])
    parser.add_argument("--config-env", default="default", help="samconfig.toml environment (default)")
    parser.add_argument("--config-file", type=Path, default=REPO / "samconfig.toml")
    parser.add_argument(
        "--region", help="default: samconfig.toml's, else AWS_DEFAULT_REGION or the profile's"
    )
    parser.add_argument("--profile", help="default: samconfig.toml's, else AWS_PROFILE")
    parser.add_argument("--allow-replace", default="", metavar="ID[,..]", help="policy: lift it for these")
    parser.add_argument("--max-wait", type=float, default=7200, help="wait-delete: seconds (default 7200)")
    parser.add_argument("--interval", type=float, default=60, help="wait-delete: seconds between polls")
    return parser


def main(
    argv: Sequence[str] | None = None, *, cloudformation: BaseClient | None = None, clock: Clock | None = None
) -> int:
    """CLI entry point; ``cloudformation`` and ``clock`` are injected by tests."""
    args = _parser().parse_args(argv)
    try:
        config = read_samconfig(args.config_file, args.config_env)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not config.stack_name:
        print(f"error: no stack_name in {config.path.name} [{config.env}]", file=sys.stderr)
        return 2
    again = "make delete" + ("" if config.env == "default" else f" ENV={config.env}")
    try:
        if cloudformation is None:
            target = resolve_target(args.region, args.profile, config)
            if target.session is None or target.problems:
                problems = "; ".join(f"{what}: {fix}" for what, fix in target.problems)
                print(f"error: {problems or 'no AWS session'}", file=sys.stderr)
                return 2
            cloudformation = target.session.client("cloudformation")
        if args.command == "policy":
            allowed = frozenset(i for i in args.allow_replace.replace(" ", "").split(",") if i)
            print(apply_stack_policy(cloudformation, config.stack_name, allowed))
            return 0
        if args.command == "delete-plan":
            print("\n".join(delete_plan(cloudformation, config.stack_name)))
            return 0
        return wait_deleted(
            cloudformation,
            config.stack_name,
            clock or Clock(),
            stderr_progress,
            max_wait=args.max_wait,
            interval=args.interval,
            again=again,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        print(
            f"error: {exc.operation_name} failed for {config.stack_name}: {error_text(exc)}", file=sys.stderr
        )
        return 1
    except BotoCoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
