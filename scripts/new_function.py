"""Scaffold a function: `make new-function NAME=report`.

Writes, for a function NAME (2-30 lowercase letters and digits, starting with a letter):
- functions/NAME/app.py: a thin handler on the layer's stable API that commits its event's
  "document" at its "key" (docs/extending.md: what to change in it);
- its resources in functions/template.yaml (log group, function, errors and throttles alarms,
  mount-errors metric filter and alarm; inserted before Outputs), its row of the Dashboard and its
  three outputs, re-exported by template.yaml;
- events/NAME.json and its line in events/README.md, which says what it answers (checked by
  tests/e2e and tests/sam_local);
- tests/functions/test_NAME_handler.py, its unit test.

Right after it, with no other edit, `make invoke FUNCTION=NAME` answers 200 and the template checks
and tests pass: every tool reads the functions from functions/template.yaml
(scripts/template_functions.py). Nothing is written when NAME is invalid or clashes with anything
that exists (exit status 2, and the message says what to change).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from template_functions import (
    NAME,
    REPO,
    Function,
    function_outputs,
    load_template,
    logical_id,
    read_functions,
)

if TYPE_CHECKING:
    from pathlib import Path

HANDLER = '''\
"""Commits the "document" of its event (any JSON value) at the event's "key" on the mount, atomically.

The {{name}} function,
scaffolded by `make new-function`: a working start on the layer's stable API (docs/extending.md,
"Add your own function"). Replace what it does and keep its shape: the caller's mistakes
(InvalidRequestError, TooLargeError) answered 4xx with `refused`, any other StoreError raised, so
that Lambda retries the event and finally keeps it in the dead-letter queue.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from s3files_store import mount
from s3files_store.commit import commit
from s3files_store.config import get_config
from s3files_store.exceptions import DeadlineError, InvalidRequestError, StoreError
from s3files_store.keys import validate_key
from s3files_store.observability import logger, metrics, refused

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """200 with the committed key, size and SHA-256; 400 for an event without a valid "key" and a
    "document"; raises when the mount or the storage fails, or too little time is left to commit."""
    cfg = get_config()
    try:
        if not isinstance(event, dict) or "document" not in event:
            raise InvalidRequestError('the event must be a JSON object with a "key" and a "document"')
        key = "/".join(validate_key(event.get("key")))
        data = json.dumps(event["document"], separators=(",", ":"), ensure_ascii=False).encode()
        mount.check_mount(cfg, need_write=True)
        # commit() has no deadline guard: refuse while Lambda can still retry, rather than be cut off.
        if (left := context.get_remaining_time_in_millis()) < cfg.deadline_margin_ms:
            raise DeadlineError(
                f"{left} ms left, under DEADLINE_MARGIN_MS={cfg.deadline_margin_ms}: {key} not "
                f"committed; raise the function's Timeout if this recurs"
            )
        result = commit(cfg.mount_root, key, data)
    except InvalidRequestError as exc:
        return refused(exc)  # the caller's fault: answered, never retried
    except StoreError:
        metrics.add_metric(name="{{Name}}Failures", unit=MetricUnit.Count, value=1)
        mount.invalidate()  # the next invoke checks the mount afresh and names a lasting cause
        raise
    metrics.add_metric(name="{{Name}}Bytes", unit=MetricUnit.Bytes, value=result.bytes)
    return {"statusCode": 200, "key": result.key, "bytes": result.bytes, "sha256": result.sha256}
'''

UNIT_TEST = '''\
"""The handler of the {{name}} function, scaffolded by `make new-function`:
what it commits, what it refuses, and when it raises for Lambda to retry. Change these with the handler."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import pytest
from testkit import EVENTS, load_handler

from s3files_store.exceptions import DeadlineError, MountError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from testkit import FakeContext

handler = load_handler("{{name}}").handler


def test_the_sample_event_is_committed_at_its_key(root: Path, context: FakeContext) -> None:
    event = json.loads((EVENTS / "{{name}}.json").read_text())
    response = handler(event, context)
    data = (root / event["key"]).read_bytes()
    assert json.loads(data) == event["document"]
    sha256 = hashlib.sha256(data).hexdigest()
    assert response == {"statusCode": 200, "key": event["key"], "bytes": len(data), "sha256": sha256}


@pytest.mark.parametrize(
    "event",
    [
        {"key": "../escape.json", "document": 1},
        {"key": ".staging/planted.json", "document": 1},
        {"key": "no-document.json"},
        ["not", "an", "object"],
    ],
)
def test_a_bad_event_is_refused_and_nothing_is_written(root: Path, context: FakeContext, event: Any) -> None:
    response = handler(event, context)
    assert response["statusCode"] == 400
    assert set(response) == {"statusCode", "error"}
    assert list(root.iterdir()) == []


def test_too_close_to_the_deadline_it_raises_and_commits_nothing(root: Path, context: FakeContext) -> None:
    context.remaining_ms = 1000  # under DEADLINE_MARGIN_MS (3000 by default)
    with pytest.raises(DeadlineError, match=r"late\\.json not committed"):
        handler({"key": "late.json", "document": 1}, context)
    assert list(root.iterdir()) == []


def test_without_its_mount_it_raises_for_lambda_to_retry(
    mount_root_at: Callable[[Path], Path], tmp_path: Path, context: FakeContext
) -> None:
    mount_root_at(tmp_path / "missing")
    with pytest.raises(MountError, match="does not exist"):
        handler({"key": "a.json", "document": 1}, context)
'''

RESOURCES = """\
  # ---------------------------------------------------------------- {{name}} (make new-function)
  {{Name}}LogGroup:
    Type: AWS::Logs::LogGroup
    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_158
            comment: CloudWatch Logs encrypts log data by default; the logs hold keys and sizes only.
    Properties:
      LogGroupName: !Sub /aws/lambda/${AWS::StackName}/{{name}}
      RetentionInDays: !Ref LogRetentionDays

  {{Name}}Function:
    Type: AWS::Serverless::Function
    Metadata:
      MountAccess: read-write
      checkov:
        skip:
          - id: CKV_AWS_173
            comment: The environment holds paths and settings only, no secrets.
    Properties:
      Description: Commits the document of its event at the event's key
      CodeUri: {{name}}/
      ReservedConcurrentExecutions: !If [HasReservedConcurrency, !Ref ReservedConcurrency, !Ref AWS::NoValue]
      FileSystemConfigs:
        - Arn: !Ref AccessPointArn
          LocalMountPath: !Ref LocalMountPath
          # It only writes: no direct reads, so no S3 access (docs/extending.md, "The template lines": how a
          # function that reads file data turns them on).
          S3FilesConfig:
            DirectS3Read: DISABLED
      LoggingConfig:
        LogGroup: !Ref {{Name}}LogGroup
      Environment:
        Variables:
          POWERTOOLS_SERVICE_NAME: {{name}}
      Policies:
        - Statement:
            - Sid: MountAndWriteThroughAccessPoint
              Effect: Allow
              Action: [s3files:ClientMount, s3files:ClientWrite]
              Resource: !Ref FileSystemArn
              Condition:
                StringEquals:
                  s3files:AccessPointArn: !Ref AccessPointArn

  {{Name}}ErrorsAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: >-
        The {{name}} function raised errors (storage faults, mount failures, timeouts). Check its log
        group for the error and the DLQ for failed asynchronous events.
      Namespace: AWS/Lambda
      MetricName: Errors
      Dimensions:
        - {Name: FunctionName, Value: !Ref {{Name}}Function}
      Statistic: Sum
      Period: 300
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]
      OKActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]

  {{Name}}ThrottlesAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: >-
        The {{name}} function's invocations were throttled: at ReservedConcurrency when it is set,
        else at the account's unreserved concurrency. Set or raise ReservedConcurrency (each environment
        is one NFS connection), raise the account's concurrency quota, or slow the callers down.
      Namespace: AWS/Lambda
      MetricName: Throttles
      Dimensions:
        - {Name: FunctionName, Value: !Ref {{Name}}Function}
      Statistic: Sum
      Period: 300
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]
      OKActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]

  {{Name}}MountErrorsFilter:
    Type: AWS::Logs::MetricFilter
    Properties:
      LogGroupName: !Ref {{Name}}LogGroup
      FilterPattern: '?S3FilesMount ?MountError ?"Permission denied" ?"Stale file handle"'
      MetricTransformations:
        - MetricNamespace: !Sub S3FilesLambda/${AWS::StackName}
          MetricName: {{Name}}MountErrors
          MetricValue: "1"
          DefaultValue: 0

  {{Name}}MountErrorsAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: >-
        The {{name}} function logged mount or permission errors. Right after a deploy, mount timeouts
        are transient (retry in a minute); otherwise check the security group rules (TCP 2049), the
        s3files:ClientMount/ClientWrite policy and the access point root directory owner and mode.
      Namespace: !Sub S3FilesLambda/${AWS::StackName}
      MetricName: {{Name}}MountErrors
      Statistic: Sum
      Period: 300
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]
      OKActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]

"""

# Its row of the Dashboard (Lambda's errors, throttles and duration), inserted above DASHBOARD_END.
DASHBOARD_ROW = """\
          - !Sub >-
            ,{"type":"metric","width":12,"properties":{"title":"{{name}}: invocations, errors, throttles",
            "region":"${AWS::Region}","stat":"Sum","period":300,"metrics":[
            ["AWS/Lambda","Invocations","FunctionName","${{{Name}}Function}"],
            ["AWS/Lambda","Errors","FunctionName","${{{Name}}Function}"],
            ["AWS/Lambda","Throttles","FunctionName","${{{Name}}Function}"]]}}
            ,{"type":"metric","width":12,"properties":{"title":"{{name}}: duration (ms)",
            "region":"${AWS::Region}","period":300,"metrics":[
            ["AWS/Lambda","Duration","FunctionName","${{{Name}}Function}",{"stat":"p50"}],
            ["AWS/Lambda","Duration","FunctionName","${{{Name}}Function}",{"stat":"p99"}],
            ["AWS/Lambda","Duration","FunctionName","${{{Name}}Function}",{"stat":"Maximum"}]]}}
"""
DASHBOARD_END = "          # make new-function inserts the row of a new function above this line.\n"

OUTPUTS = """\
  {{Name}}FunctionName:
    Description: {{Name}} function name
    Value: !Ref {{Name}}Function
  {{Name}}FunctionArn:
    Description: {{Name}} function ARN
    Value: !GetAtt {{Name}}Function.Arn
  {{Name}}LogGroupName:
    Description: Log group of the {{name}} function
    Value: !Ref {{Name}}LogGroup
"""

ROOT_OUTPUTS = """\
  {{Name}}FunctionName:
    Description: {{Name}} function name
    Value: !GetAtt Functions.Outputs.{{Name}}FunctionName
  {{Name}}FunctionArn:
    Description: {{Name}} function ARN
    Value: !GetAtt Functions.Outputs.{{Name}}FunctionArn
  {{Name}}LogGroupName:
    Description: Log group of the {{name}} function
    Value: !GetAtt Functions.Outputs.{{Name}}LogGroupName
"""

RESOURCE_SUFFIXES = (
    "LogGroup",
    "Function",
    "ErrorsAlarm",
    "ThrottlesAlarm",
    "MountErrorsFilter",
    "MountErrorsAlarm",
)
# events/README.md's table: the new line goes above this one.
ENV_ROW = "| `env.json` |"


class ScaffoldError(Exception):
    """NAME cannot be scaffolded; the message says why and what to do."""


def fill(text: str, name: str) -> str:
    return text.replace("{{name}}", name).replace("{{Name}}", name.capitalize())


def sample_document(name: str) -> dict[str, object]:
    return {"key": f"{name}/example.json", "document": {"source": f"events/{name}.json", "rows": 2}}


def ending_in_newline(path: Path) -> str:
    text = path.read_text()
    return text if text.endswith("\n") else text + "\n"


def check_name(project: Path, name: str) -> None:
    """ScaffoldError unless `name` is valid and nothing of it exists yet in `project`."""
    if not NAME.fullmatch(name):
        raise ScaffoldError(
            f"function name {name!r} is invalid: use 2-30 lowercase letters and digits, starting with a "
            f"letter (it names functions/<name>/, events/<name>.json and <Name>Function), e.g. report"
        )
    functions_template = project / "functions" / "template.yaml"
    existing = read_functions(functions_template)
    if name in existing:
        raise ScaffoldError(
            f"a function named {name!r} exists already ({existing[name].logical_id} in "
            f"functions/template.yaml): choose another NAME"
        )
    paths = [
        project / "functions" / name,
        project / "events" / f"{name}.json",
        *(project / "events").glob(f"{name}-*.json"),
        project / "tests" / "functions" / f"test_{name}_handler.py",
    ]
    if taken := [str(path.relative_to(project)) for path in paths if path.exists()]:
        raise ScaffoldError(
            f"{', '.join(taken)} exist(s) already, so {name!r} would clash: choose another NAME, "
            f"or remove them if they are left from an earlier attempt"
        )
    ids = {f"{name.capitalize()}{suffix}" for suffix in RESOURCE_SUFFIXES}
    outputs = set(function_outputs(Function(name, logical_id(name), writes=True, scheduled=False)))
    for template in (functions_template, project / "template.yaml"):
        data = load_template(template)
        if clash := sorted(ids & data.get("Resources", {}).keys() | outputs & data.get("Outputs", {}).keys()):
            raise ScaffoldError(
                f"{template.relative_to(project)} already has {', '.join(clash)}: choose another NAME"
            )
        if list(data)[-1] != "Outputs":
            raise ScaffoldError(
                f"{template.relative_to(project)}: Outputs is not its last section, so the new outputs "
                f"cannot be appended: move Outputs to the end of the file"
            )
    services = {f"POWERTOOLS_SERVICE_NAME: {name}\n", f'POWERTOOLS_SERVICE_NAME: "{name}"\n'}
    if any(service in functions_template.read_text() for service in services):
        raise ScaffoldError(
            f"functions/template.yaml already has a function with POWERTOOLS_SERVICE_NAME {name}: "
            f"choose another NAME"
        )


def scaffold(project: Path, name: str) -> list[Path]:
    """Write function NAME into `project` (module doc); the paths written or changed."""
    check_name(project, name)
    functions_template = project / "functions" / "template.yaml"
    text = ending_in_newline(functions_template)
    at = text.rfind("\nOutputs:\n")
    readme = project / "events" / "README.md"
    table = readme.read_text()
    if at < 0 or ENV_ROW not in table or text.count(DASHBOARD_END) != 1:
        raise ScaffoldError(
            "functions/template.yaml has no Outputs section or not one Dashboard line "
            f"{DASHBOARD_END.strip()!r}, or events/README.md no env.json line in its table: restore them "
            "from git"
        )
    text = text.replace(DASHBOARD_END, fill(DASHBOARD_ROW, name) + DASHBOARD_END)
    at = text.rfind("\nOutputs:\n")
    document = sample_document(name)
    size = len(json.dumps(document["document"], separators=(",", ":"), ensure_ascii=False).encode())
    row = (
        f"| `{name}.json` | {name} | 200; commits the event's `document` at `{document['key']}` | "
        f'200, `"key": "{document["key"]}", "bytes": {size}` |\n'
    )
    written = {
        project / "functions" / name / "app.py": fill(HANDLER, name),
        project / "events" / f"{name}.json": json.dumps(document, indent=2) + "\n",
        project / "tests" / "functions" / f"test_{name}_handler.py": fill(UNIT_TEST, name),
        functions_template: text[: at + 1] + fill(RESOURCES, name) + text[at + 1 :] + fill(OUTPUTS, name),
        project / "template.yaml": ending_in_newline(project / "template.yaml") + fill(ROOT_OUTPUTS, name),
        readme: table.replace(ENV_ROW, row + ENV_ROW, 1),
    }
    for path, content in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return list(written)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: make new-function NAME=<name>", file=sys.stderr)
        return 2
    [name] = args
    try:
        written = scaffold(REPO, name)
    except (ScaffoldError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path.relative_to(REPO)}")
    print(
        f"Next: make invoke FUNCTION={name} (answers 200), then make the handler yours: "
        f"docs/extending.md; events/README.md says what events/{name}.json answers."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
