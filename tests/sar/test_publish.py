"""Publishing: the SAR metadata checks and what `sam publish` sends to SAR, against a stubbed client."""

from __future__ import annotations

import copy
import shutil
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber
from samcli.cli.context import Context
from samcli.commands.build.command import cli as sam_build
from samcli.commands.package.command import cli as sam_package
from samcli.commands.publish.command import cli as sam_publish
from samcli.vendor.serverlessrepo.publish import publish_application
from samcli.yamlhelper import yaml_dump, yaml_parse

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from types import ModuleType

APPLICATION_ID = "arn:aws:serverlessrepo:us-east-1:123456789012:applications/s3files-lambda-atomic-commit"
METADATA = "AWS::ServerlessRepo::Application"


@pytest.fixture
def client() -> Iterator[tuple[Any, Stubber]]:
    sar_client = boto3.client("serverlessrepo", region_name="us-east-1")
    with Stubber(sar_client) as stubber:
        yield sar_client, stubber
        stubber.assert_no_pending_responses()


def _template_body(packaged: dict[str, Any]) -> str:
    """What SAR must receive as the template: the packaged template without the SAR metadata."""
    template = copy.deepcopy(packaged)
    del template["Metadata"][METADATA]
    return yaml_dump(template)


def test_publish_creates_the_application_with_the_metadata_of_template_yaml(
    root_template: dict, packaged: dict, client: tuple[Any, Stubber]
) -> None:
    sar_client, stubber = client
    metadata = root_template["Metadata"][METADATA]
    expected = {
        "Name": metadata["Name"],
        "Author": metadata["Author"],
        "Description": metadata["Description"],
        "SemanticVersion": metadata["SemanticVersion"],
        "SpdxLicenseId": metadata["SpdxLicenseId"],
        "LicenseUrl": "s3://artifacts/license-0123",
        "ReadmeUrl": "s3://artifacts/readme-4567",
        "Labels": metadata["Labels"],
        "HomePageUrl": metadata["HomePageUrl"],
        "SourceCodeUrl": metadata["SourceCodeUrl"],
        "TemplateBody": _template_body(packaged),
    }
    stubber.add_response("create_application", {"ApplicationId": APPLICATION_ID}, expected)
    result = publish_application(yaml_dump(packaged), sar_client=sar_client)
    assert result["application_id"] == APPLICATION_ID
    assert result["actions"] == ["CREATE_APPLICATION"]
    body = yaml_parse(expected["TemplateBody"])
    assert METADATA not in body["Metadata"]
    assert body["Resources"]["WriterFunction"]["Properties"]["CodeUri"] == "s3://artifacts/WriterFunction.zip"


def test_publish_of_an_existing_application_updates_it_and_adds_the_version(
    root_template: dict, packaged: dict, client: tuple[Any, Stubber]
) -> None:
    sar_client, stubber = client
    metadata = root_template["Metadata"][METADATA]
    packaged["Metadata"][METADATA]["SemanticVersion"] = "0.2.0"
    stubber.add_client_error(
        "create_application",
        service_error_code="ConflictException",
        service_message=f"Application with id {APPLICATION_ID} already exists.",
        http_status_code=409,
    )
    stubber.add_response(
        "update_application",
        {"ApplicationId": APPLICATION_ID},
        {
            "ApplicationId": APPLICATION_ID,
            "Author": metadata["Author"],
            "Description": metadata["Description"],
            "HomePageUrl": metadata["HomePageUrl"],
            "Labels": metadata["Labels"],
            "ReadmeUrl": "s3://artifacts/readme-4567",
        },
    )
    stubber.add_response(
        "create_application_version",
        {"ApplicationId": APPLICATION_ID, "SemanticVersion": "0.2.0"},
        {
            "ApplicationId": APPLICATION_ID,
            "SemanticVersion": "0.2.0",
            "SourceCodeUrl": metadata["SourceCodeUrl"],
            "TemplateBody": _template_body(packaged),
        },
    )
    result = publish_application(yaml_dump(packaged), sar_client=sar_client)
    assert result["actions"] == ["UPDATE_APPLICATION", "CREATE_APPLICATION_VERSION"]


def test_an_intrinsic_in_the_metadata_fails_both_checks(sar: ModuleType, packaged: dict) -> None:
    packaged["Metadata"][METADATA]["SemanticVersion"] = {"Ref": "Version"}
    with pytest.raises(sar.SarError, match=r"SemanticVersion is .*Ref.*literal strings"):
        sar.check_metadata(packaged)
    sar_client = boto3.client("serverlessrepo", region_name="us-east-1")
    with Stubber(sar_client) as stubber:
        stubber.add_response("create_application", {"ApplicationId": APPLICATION_ID})
        with pytest.raises(ParamValidationError, match="SemanticVersion"):
            publish_application(yaml_dump(packaged), sar_client=sar_client)
        with pytest.raises(AssertionError):  # the request was refused before it was sent
            stubber.assert_no_pending_responses()


def test_missing_required_metadata_is_reported_by_the_serverlessrepo_rules(
    sar: ModuleType, derived: dict
) -> None:
    template = copy.deepcopy(derived)
    sar.check_metadata(template)
    del template["Metadata"][METADATA]["Author"]
    with pytest.raises(sar.SarError, match=r"author properties not provided.*template\.yaml"):
        sar.check_metadata(template)
    del template["Metadata"][METADATA]
    with pytest.raises(sar.SarError, match="missing AWS::ServerlessRepo::Application"):
        sar.check_metadata(template)


def test_publish_builds_packages_and_publishes_the_derived_template(
    sar: ModuleType, packaged: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []
    monkeypatch.setattr(sar, "_run", commands.append)
    out = tmp_path / "sar" / "template.yaml"
    sar.publish("my-artifacts", "eu-west-1", "1.2.3", out=out)
    build, package, publish = commands
    assert [c[:2] for c in commands] == [["sam", "build"], ["sam", "package"], ["sam", "publish"]]
    # Each command line must parse with sam's own options (which read the templates they name).
    (out.parent / ".aws-sam").mkdir()
    shutil.copy(out, out.parent / ".aws-sam" / "template.yaml")
    (out.parent / "packaged.yaml").write_text(yaml_dump(packaged), encoding="utf-8")
    built = sam_build.make_context("build", build[2:]).params
    packing = sam_package.make_context("package", package[2:])
    publishing = sam_publish.make_context("publish", publish[2:])
    assert built["template_file"] == str(out)
    assert packing.params["template_file"] == built["build_dir"] + "/template.yaml"
    assert packing.params["s3_bucket"] == "my-artifacts"
    assert publishing.params["template_file"] == packing.params["output_template_file"]
    assert publishing.params["semantic_version"] == "1.2.3"
    assert packing.find_object(Context).region == publishing.find_object(Context).region == "eu-west-1"


def test_a_failing_sam_step_stops_publish_with_its_name(sar: ModuleType, capsys: Any) -> None:
    with pytest.raises(sar.SarError, match="false --version failed"):
        sar._run(["false", "--version"])
    assert "+ false --version" in capsys.readouterr().out
