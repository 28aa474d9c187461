"""The guide docs/extending.md, "The layer's API", run as written: its example handler, and its one
example of each call of the layer (in the order the page gives them, with /tmp standing for a test
directory)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import pytest
from testkit import docs_blocks

from s3files_store.commit import commit
from s3files_store.exceptions import DeadlineError

if TYPE_CHECKING:
    from pathlib import Path

    from testkit import FakeContext

PAGE, SECTION = "extending.md", "The layer's API"
HANDLER, *CALLS = docs_blocks(PAGE, SECTION, "python")


def run(code: str, namespace: dict[str, Any], tmp: Path) -> None:
    exec(compile(code.replace("/tmp/", f"{tmp}/"), f"docs/{PAGE}, {SECTION}", "exec"), namespace)


def test_the_example_handler_streams_its_rows_and_refuses_what_it_must(
    root: Path, context: FakeContext, tmp_path: Path
) -> None:
    module: dict[str, Any] = {"__name__": "report_app"}
    run(HANDLER, module, tmp_path)
    handler = module["handler"]
    event = {"key": "reports/2026/12/01/totals.csv", "rows": [["id", "total"], [1, 9.5]]}
    response = handler(event, context)
    data = b"id,total\n1,9.5\n"
    assert response == {
        "statusCode": 200,
        "key": event["key"],
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert (root / event["key"]).read_bytes() == data
    for refused in ({"key": "../escape.csv", "rows": []}, {"key": "a.csv"}, ["not", "an", "object"]):
        assert handler(refused, context)["statusCode"] == 400
    context.remaining_ms = 1000  # under DEADLINE_MARGIN_MS: raised for a retry, nothing committed
    with pytest.raises(DeadlineError):
        handler({"key": "late.csv", "rows": [[1]]}, context)
    assert sorted(p.name for p in root.iterdir()) == [".staging", "reports"]
    assert list((root / ".staging").iterdir()) == []


def test_each_call_runs_as_written(root: Path, context: FakeContext, tmp_path: Path) -> None:
    orders, refunds = b"order,1,9.5\norder,2,12.0\n", b"refund,3,-4.0\n"
    (tmp_path / "orders.csv").write_bytes(orders)
    (tmp_path / "refunds.csv").write_bytes(refunds)
    # More than one page for the listing example to follow.
    others = [f"exports/2026/12/02/{n:03}.csv" for n in range(150)]
    for key in others:
        commit(root, key, b"x\n")
    namespace: dict[str, Any] = {"context": context}
    for code in CALLS:
        run(code, namespace, tmp_path)
    assert namespace["summary"] == {"orders": 2}
    assert (root / "exports/2026/12/01/orders.csv").read_bytes() == orders
    ledger = (root / "exports/2026/12/01/ledger.csv").read_bytes()
    assert ledger == b"kind,id,total\n" + orders + refunds
    result = namespace["ledger"]
    assert (result.bytes, result.sha256) == (len(ledger), hashlib.sha256(ledger).hexdigest())
    assert namespace["header"] == b"kind,id,total\n"
    assert namespace["keys"] == ["exports/2026/12/01/ledger.csv", "exports/2026/12/01/orders.csv", *others]
