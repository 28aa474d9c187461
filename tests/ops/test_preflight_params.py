"""The parameters preflight judges (template defaults < the stack's previous values < samconfig.toml's
environment < the command line) and the reservations it reads from the templates, nested ones included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from s3files_ops.account import Deployed
from s3files_ops.params import REPO, ConfigError, read_samconfig, reservations, total
from s3files_ops.preflight import Request

if TYPE_CHECKING:
    from pathlib import Path


def _request(app: Path, env: str = "default", command_line: dict[str, str] | None = None) -> Request:
    config = read_samconfig(app / "samconfig.toml", env)
    return Request(app / "template.yaml", config, command_line or {}, config.stack_name)


@pytest.mark.parametrize(
    ("env", "stack", "reserved"),
    [("default", "s3files-lambda-dev", "0"), ("prod", "s3files-lambda-prod", "50")],
)
def test_the_repository_samconfig_of_each_env_reaches_the_parameters(
    env: str, stack: str, reserved: str
) -> None:
    request = Request(REPO / "template.yaml", read_samconfig(REPO / "samconfig.toml", env), {}, None)
    params = request.parameters(Deployed())
    assert request.config.stack_name == stack
    assert params.sources["LogRetentionDays"] == f"samconfig.toml [{env}]"
    assert params.sources["ReservedConcurrency"] == f"samconfig.toml [{env}]"
    assert params.values["ReservedConcurrency"] == reserved


def test_dev_reserves_nothing() -> None:
    """Explicitly: a dev stack deployed with a reservation before drops it (sam deploy keeps the
    previous value of a parameter it is not given)."""
    assert read_samconfig(REPO / "samconfig.toml", "default").overrides["ReservedConcurrency"] == "0"


def test_each_env_reads_its_own_overrides_and_the_command_line_wins(app: Path) -> None:
    dev = _request(app).parameters(Deployed())
    assert dev.values["LogRetentionDays"] == "14"
    assert dev.values["ReservedConcurrency"] == "0"
    assert dev.sources["ReservedConcurrency"] == "template default"
    prod = _request(app, "prod").parameters(Deployed())
    assert (prod.values["ReservedConcurrency"], prod.values["LogRetentionDays"]) == ("50", "90")
    assert prod.sources["ReservedConcurrency"] == "samconfig.toml [prod]"
    what_if = _request(app, "prod", {"ReservedConcurrency": "5"}).parameters(Deployed())
    assert what_if.values["ReservedConcurrency"] == "5"
    assert what_if.sources["ReservedConcurrency"] == "command line"
    assert what_if.values["LogRetentionDays"] == "90"  # the rest of [prod] still applies


def test_an_update_keeps_previous_values_that_nothing_overrides(app: Path) -> None:
    previous = Deployed(previous={"ReservedConcurrency": "7", "VpcId": "vpc-0123456789abcdef0"})
    params = _request(app, "prod").parameters(previous)
    assert params.values["ReservedConcurrency"] == "50"  # samconfig.toml wins over the stack
    assert params.values["VpcId"] == "vpc-0123456789abcdef0"
    assert params.sources["VpcId"] == "stack app-prod"


def test_names_the_template_does_not_declare_are_ignored_like_sam_does(app: Path) -> None:
    params = _request(app, command_line={"ReservedConcurency": "5"}).parameters(Deployed())
    assert params.ignored == ("ReservedConcurency",)
    assert "ReservedConcurency" not in params.values


def test_samconfig_settings_global_then_deploy(app: Path) -> None:
    prod = read_samconfig(app / "samconfig.toml", "prod")
    assert (prod.stack_name, prod.region, prod.profile) == ("app-prod", "eu-west-1", None)
    assert prod.overrides == {"ReservedConcurrency": "50", "LogRetentionDays": "90"}  # the list form
    dev = read_samconfig(app / "samconfig.toml", "default")
    assert (dev.stack_name, dev.region) == ("app-dev", None)


def test_overrides_parse_like_sam_deploy(app: Path) -> None:
    (app / "samconfig.toml").write_text(
        "[default.deploy.parameters]\n"
        'parameter_overrides = "ParameterKey=VpcId,ParameterValue=vpc-1 '
        'ParameterKey=SubnetIds,ParameterValue=subnet-a,subnet-b"\n'
    )
    assert read_samconfig(app / "samconfig.toml", "default").overrides == {
        "VpcId": "vpc-1",
        "SubnetIds": "subnet-a,subnet-b",
    }


def test_an_unknown_env_or_a_bad_override_is_named(app: Path) -> None:
    with pytest.raises(ConfigError, match=r"has no \[staging\] environment \(it has: default, prod\)"):
        read_samconfig(app / "samconfig.toml", "staging")
    (app / "samconfig.toml").write_text('[default.deploy.parameters]\nparameter_overrides = "oops"\n')
    with pytest.raises(
        ConfigError, match=r"samconfig.toml \[default\] parameter_overrides: oops is not a valid"
    ):
        read_samconfig(app / "samconfig.toml", "default")


def test_no_samconfig_means_template_defaults(tmp_path: Path) -> None:
    assert read_samconfig(tmp_path / "samconfig.toml", "default").overrides == {}
    with pytest.raises(ConfigError, match=r"not found, so it has no \[prod\] environment"):
        read_samconfig(tmp_path / "samconfig.toml", "prod")


def test_the_repository_template_reserves_the_parameter_for_writer_and_reader() -> None:
    """Whatever else it reserves, and wherever the functions live (root or nested template)."""
    found = reservations(REPO / "template.yaml", {"ReservedConcurrency": "7"})
    by_name = {r.function.rsplit("/", 1)[-1]: r.amount for r in found}
    assert by_name["WriterFunction"] == 7
    assert by_name["ReaderFunction"] == 7


def test_nested_reservations_follow_the_parameter_through_the_application(app: Path) -> None:
    root = app / "template.yaml"
    none = reservations(root, {"ReservedConcurrency": "0"})
    assert total(none) == 0
    assert {r.amount for r in none} == {None}  # left out, never 0 (which would stop the function)
    some = reservations(root, {"ReservedConcurrency": "4"})
    assert [(r.function, r.amount) for r in some if r.amount] == [
        ("Functions/WriterFunction", 4),
        ("Functions/ReaderFunction", 4),
        ("Functions/UnzipFunction", 4),
    ]
    plan = _request(app, command_line={"ReservedConcurrency": "4"}).plan(
        _request(app, command_line={"ReservedConcurrency": "4"}).parameters(Deployed())
    )
    assert (plan.requested, plan.per_unit, plan.fixed) == (12, 3, 0)


def test_fixed_reservations_and_globals_count(app: Path) -> None:
    (app / "functions.yaml").write_text(
        """
Parameters:
  ReservedConcurrency: {Type: Number}
Conditions:
  Never: !Equals [a, b]
Globals:
  Function:
    ReservedConcurrentExecutions: !Ref ReservedConcurrency
Resources:
  FromGlobals: {Type: AWS::Serverless::Function, Properties: {}}
  Own: {Type: AWS::Serverless::Function, Properties: {ReservedConcurrentExecutions: 1}}
  Plain: {Type: AWS::Lambda::Function, Properties: {ReservedConcurrentExecutions: 2}}
  PlainNoGlobals: {Type: AWS::Lambda::Function, Properties: {}}
  Skipped: {Type: AWS::Serverless::Function, Condition: Never, Properties: {ReservedConcurrentExecutions: 9}}
"""
    )
    request = _request(app, command_line={"ReservedConcurrency": "5"})
    plan = request.plan(request.parameters(Deployed()))
    assert [(r.function, r.amount) for r in plan.reservations] == [
        ("Functions/FromGlobals", 5),
        ("Functions/Own", 1),
        ("Functions/Plain", 2),
    ]
    assert (plan.requested, plan.per_unit, plan.fixed) == (8, 1, 3)


def test_a_reservation_known_only_after_the_deploy_is_refused(app: Path) -> None:
    functions = (app / "functions.yaml").read_text()
    (app / "functions.yaml").write_text(
        functions.replace("!Ref ReservedConcurrency, !Ref AWS::NoValue", "!Ref VpcId, 1")
    )
    # VpcId reaches the nested template as !Ref Vpc (created VPC): unknown before the deploy.
    with pytest.raises(
        ConfigError,
        match=r"functions.yaml: WriterFunction: ReservedConcurrentExecutions depends on Ref VpcId",
    ):
        reservations(app / "template.yaml", {"ReservedConcurrency": "3"})


def test_only_local_nested_templates_are_read(app: Path) -> None:
    root = (app / "template.yaml").read_text()
    (app / "template.yaml").write_text(root.replace("Location: functions.yaml", "Location: missing.yaml"))
    with pytest.raises(ConfigError, match=r"Functions points at missing\.yaml, which is not a file"):
        reservations(app / "template.yaml", {})
    app_id = "arn:aws:serverlessrepo:us-east-1:123456789012:applications/x"
    sar = f"Location: {{ApplicationId: {app_id}, SemanticVersion: 1.0.0}}"
    (app / "template.yaml").write_text(root.replace("Location: functions.yaml", sar))
    assert reservations(app / "template.yaml", {"ReservedConcurrency": "3"}) == []
