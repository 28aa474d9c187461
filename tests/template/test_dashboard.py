"""The dashboard shows what the code emits: each handler runs here, and every storage metric a widget
names (metric name, namespace, dimensions) is one a handler printed as EMF; each function has the row
`make new-function` writes."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest
import template_checks as tc
from new_function import DASHBOARD_ROW, fill
from template_functions import FUNCTIONS_TEMPLATE, functions
from testkit import load_handler, write_zip

from s3files_store.exceptions import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from testkit import FakeContext

# Events that make each handler succeed, refuse the caller (4xx) and fail on the storage: between
# them, every metric a handler can emit. The failures run without a mount (MOUNT_ROOT missing).
EVENTS: dict[str, dict[str, Any]] = {
    "writer": {"ok": {"id": "a"}, "refused": {"id": "../a"}, "fails": {"id": "b"}},
    "reader": {"ok": {"prefix": "documents"}, "refused": {"key": "../a"}, "fails": {"key": "a.json"}},
    "janitor": {"ok": {}, "refused": {"older_than_seconds": "soon"}, "fails": {}},
    "unzip": {
        "ok": {"archive": "in/a.zip", "destination": "out"},
        "refused": ["not", "an", "object"],
        "fails": {"archive": "in/a.zip", "destination": "out2"},
    },
}


def _emf(out: str) -> list[dict[str, Any]]:
    return [blob for line in out.splitlines() if '"_aws"' in line and (blob := json.loads(line))]


def _run_all(
    root: Path,
    mount_root_at: Callable[[Path], Path],
    context: FakeContext,
    capsys: pytest.CaptureFixture[str],
) -> dict[str, list[dict[str, Any]]]:
    write_zip(root / "in" / "a.zip", [("x.txt", b"x" * 100)])
    blobs: dict[str, list[dict[str, Any]]] = {}
    for name, events in EVENTS.items():
        handler = load_handler(name).handler
        capsys.readouterr()
        mount_root_at(root)
        handler(events["ok"], context)
        handler(events["refused"], context)
        mount_root_at(root / "missing")
        with pytest.raises(StoreError):
            handler(events["fails"], context)
        blobs[name] = _emf(capsys.readouterr().out)
    return blobs


def test_every_storage_metric_the_dashboard_shows_is_emitted_by_its_function(
    root: Path,
    mount_root_at: Callable[[Path], Path],
    context: FakeContext,
    capsys: pytest.CaptureFixture[str],
    resolved: dict[str, dict[str, Any]],
) -> None:
    blobs = _run_all(root, mount_root_at, context, capsys)
    # What the handlers print: (service, metric) in the namespace and dimensions they are given.
    by_function: dict[str, set[str]] = {name: set() for name in EVENTS}
    for name, printed in blobs.items():
        for blob in printed:
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                assert directive["Namespace"] == os.environ["POWERTOOLS_METRICS_NAMESPACE"]
                assert directive["Dimensions"] == [["service"]]
                assert blob["service"] == os.environ["POWERTOOLS_SERVICE_NAME"]
                by_function[name] |= {metric["Name"] for metric in directive["Metrics"]}
    assert by_function["writer"] >= {"CommitLatency", "CommitBytes", "CommitFailures", "RejectedRequests"}
    template = resolved["create-vpc"]
    assert tc.check_dashboard(template) == []  # namespace = POWERTOOLS_METRICS_NAMESPACE, dimension service
    services = {
        tc.props(template, f.logical_id)["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]: f.name
        for f in functions().values()
    }
    storage = [m for m in tc.dashboard_metrics(template) if m.namespace not in {"AWS/Lambda", "AWS/SQS"}]
    assert storage
    for metric in storage:
        service = metric.dimensions["service"]
        emitters = [services[service]] if service else list(by_function)
        assert any(metric.name in by_function[name] for name in emitters), (metric, by_function)


def test_each_function_has_the_dashboard_row_the_scaffold_writes() -> None:
    text = FUNCTIONS_TEMPLATE.read_text()
    for name in functions():
        assert text.count(fill(DASHBOARD_ROW, name)) == 1, name
    assert text.count(": invocations, errors, throttles") == len(functions())
