"""Publishing: `make publish` packages the functions stack's build output and `sam publish`es it; run
here in-process, `sam package` against moto's S3 and `sam publish` against a stubbed SAR client."""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber
from moto import mock_aws
from samcli.cli.context import Context
from samcli.cli.main import cli as sam
from samcli.commands.build.command import cli as sam_build
from samcli.commands.package.command import cli as sam_package
from samcli.commands.publish.command import cli as sam_publish
from samcli.vendor.serverlessrepo import publish as serverlessrepo_publish
from samcli.vendor.serverlessrepo.exceptions import ServerlessRepoError
from samcli.vendor.serverlessrepo.publish import publish_application
from samcli.yamlhelper import yaml_dump, yaml_parse
from sar_metadata import main as sar_metadata
from testkit import FUNCTION_IDS, REPO, no_account, run_make

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator

ARTIFACTS = "my-artifacts"
REGION = "eu-west-1"
APPLICATION_ID = "arn:aws:serverlessrepo:eu-west-1:123456789012:applications/s3files-lambda-atomic-commit"
METADATA = "AWS::ServerlessRepo::Application"
# What a publisher passes (make publish AUTHOR=... HOME_PAGE_URL=... SOURCE_CODE_URL=...).
PUBLISHER = {
    "Author": "Jane Doe",
    "HomePageUrl": "https://github.com/jane-doe/s3files-lambda",
    "SourceCodeUrl": "https://github.com/jane-doe/s3files-lambda/tree/main",
}
PUBLISHER_ARGS = [
    "--author",
    PUBLISHER["Author"],
    "--home-page-url",
    PUBLISHER["HomePageUrl"],
    "--source-code-url",
    PUBLISHER["SourceCodeUrl"],
]


def package_with_moto(args: list[str]) -> None:
    """`sam package ARGS` itself, in-process, against moto's S3 (the bucket is created first)."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=ARTIFACTS, CreateBucketConfiguration={"LocationConstraint": REGION})
        sam.main(["package", *args], standalone_mode=False)


def with_values(args: list[str], **values: str) -> list[str]:
    """`args` with the value after each --option_name replaced (template_file: --template-file)."""
    args = [*args]
    for option, value in values.items():
        args[args.index(f"--{option.replace('_', '-')}") + 1] = value
    return args


def published_template(build_dir: Path) -> Path:
    """The functions stack's sam build output with the publisher's metadata, as make publish writes it
    (beside the built template, whose paths are relative to its directory)."""
    template = build_dir / "Functions" / "template-published.yaml"
    template.write_text((build_dir / "Functions" / "template.yaml").read_text(encoding="utf-8"))
    assert sar_metadata(["write", str(template), *PUBLISHER_ARGS]) == 0
    return template


@pytest.fixture(scope="module")
def packaged_path(build_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The functions stack's sam build output (what template.yaml nests), packaged to ARTIFACTS."""
    output = tmp_path_factory.mktemp("sar") / "packaged.yaml"
    template = published_template(build_dir)
    files = ["--template-file", str(template), "--output-template-file", str(output)]
    package_with_moto([*files, "--s3-bucket", ARTIFACTS, "--region", REGION])
    return output


@pytest.fixture
def packaged(packaged_path: Path) -> dict[str, Any]:
    return yaml_parse(packaged_path.read_text(encoding="utf-8"))


@pytest.fixture
def client() -> Iterator[tuple[Any, Stubber]]:
    sar_client = boto3.client("serverlessrepo", region_name=REGION)
    with Stubber(sar_client) as stubber:
        yield sar_client, stubber
        stubber.assert_no_pending_responses()


def _template_body(packaged: dict[str, Any]) -> str:
    """What SAR must receive as the template: the packaged template without the SAR metadata."""
    template = copy.deepcopy(packaged)
    del template["Metadata"][METADATA]
    return yaml_dump(template)


def _create_request(functions_template: dict, packaged: dict, version: str) -> dict[str, Any]:
    metadata = functions_template["Metadata"][METADATA] | PUBLISHER
    packaged_metadata = packaged["Metadata"][METADATA]
    return {
        "Name": metadata["Name"],
        "Author": metadata["Author"],
        "Description": metadata["Description"],
        "SemanticVersion": version,
        "SpdxLicenseId": metadata["SpdxLicenseId"],
        "LicenseUrl": packaged_metadata["LicenseUrl"],
        "ReadmeUrl": packaged_metadata["ReadmeUrl"],
        "Labels": metadata["Labels"],
        "HomePageUrl": metadata["HomePageUrl"],
        "SourceCodeUrl": metadata["SourceCodeUrl"],
        "TemplateBody": _template_body(packaged),
    }


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_make(REPO, *args, env=env, timeout=60)


def test_packaging_uploads_the_code_license_and_readme(packaged: dict) -> None:
    metadata, resources = packaged["Metadata"][METADATA], packaged["Resources"]
    uris = [
        metadata["LicenseUrl"],
        metadata["ReadmeUrl"],
        resources["SharedLayer"]["Properties"]["ContentUri"],
    ]
    uris += [resources[name]["Properties"]["CodeUri"] for name in FUNCTION_IDS]
    assert all(uri.startswith(f"s3://{ARTIFACTS}/") for uri in uris), uris
    assert len(set(uris)) == len(uris)


def test_publish_creates_the_application_with_the_metadata_of_the_functions_template(
    functions_template: dict, packaged: dict, client: tuple[Any, Stubber]
) -> None:
    sar_client, stubber = client
    version = functions_template["Metadata"][METADATA]["SemanticVersion"]
    expected = _create_request(functions_template, packaged, version)
    stubber.add_response("create_application", {"ApplicationId": APPLICATION_ID}, expected)
    result = publish_application(yaml_dump(packaged), sar_client=sar_client)
    assert result["application_id"] == APPLICATION_ID
    assert result["actions"] == ["CREATE_APPLICATION"]
    body = yaml_parse(expected["TemplateBody"])
    assert METADATA not in body["Metadata"]
    assert body["Parameters"].keys() >= {"AccessPointArn", "FileSystemArn", "BucketName", "SubnetIds"}


def test_publish_of_an_existing_application_updates_it_and_adds_the_version(
    functions_template: dict, packaged: dict, client: tuple[Any, Stubber]
) -> None:
    sar_client, stubber = client
    metadata = functions_template["Metadata"][METADATA] | PUBLISHER
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
            "ReadmeUrl": packaged["Metadata"][METADATA]["ReadmeUrl"],
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


def test_metadata_without_author_is_refused_before_any_request(
    packaged: dict, client: tuple[Any, Stubber]
) -> None:
    sar_client, _ = client  # nothing queued: any request would fail the test with UnStubbedResponseError
    del packaged["Metadata"][METADATA]["Author"]
    with pytest.raises(ServerlessRepoError, match="author"):
        publish_application(yaml_dump(packaged), sar_client=sar_client)


def test_an_intrinsic_in_the_metadata_is_refused_before_any_request(packaged: dict) -> None:
    packaged["Metadata"][METADATA]["SemanticVersion"] = {"Ref": "Version"}
    sar_client = boto3.client("serverlessrepo", region_name=REGION)
    with Stubber(sar_client) as stubber:
        stubber.add_response("create_application", {"ApplicationId": APPLICATION_ID})
        with pytest.raises(ParamValidationError, match="SemanticVersion"):
            publish_application(yaml_dump(packaged), sar_client=sar_client)
        with pytest.raises(AssertionError):  # the request was refused before it was sent
            stubber.assert_no_pending_responses()


def test_make_publish_needs_a_bucket() -> None:
    done = make("publish")
    assert done.returncode == 2
    assert "usage: make publish BUCKET=" in done.stderr
    assert "serverlessrepo.amazonaws.com" in done.stderr


def test_make_publish_without_credentials_stops_before_building_or_uploading() -> None:
    # Not `Unable to upload artifact ../../../LICENSE`: sam package's words when credentials are the cause.
    env = no_account()
    del env["AWS_DEFAULT_REGION"]
    done = make(
        "publish",
        f"BUCKET={ARTIFACTS}",
        f"AUTHOR={PUBLISHER['Author']}",
        f"HOME_PAGE_URL={PUBLISHER['HomePageUrl']}",
        f"SOURCE_CODE_URL={PUBLISHER['SourceCodeUrl']}",
        env=env,
    )
    assert done.returncode == 2
    assert "error: no AWS credentials found: get credentials: run `aws configure`" in done.stderr
    assert "error: no AWS Region set: pass REGION=eu-west-1, or export AWS_DEFAULT_REGION" in done.stderr
    assert "sam build" not in done.stdout + done.stderr
    assert "Unable to upload" not in done.stdout + done.stderr


def test_make_publish_packages_and_publishes_the_nested_build_output(
    functions_template: dict,
    build_dir: Path,
    tmp_path: Path,
    client: tuple[Any, Stubber],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    variables = [f"AUTHOR={PUBLISHER['Author']}", f"SOURCE_CODE_URL={PUBLISHER['SourceCodeUrl']}"]
    dry_run = make("-n", "publish", f"BUCKET={ARTIFACTS}", f"REGION={REGION}", *variables)
    assert dry_run.returncode == 0, dry_run.stderr
    # The publisher's metadata is checked before the build and written into what sam package reads.
    metadata_steps = [
        shlex.split(line)[1:] for line in dry_run.stdout.splitlines() if "scripts/sar_metadata.py" in line
    ]
    assert [step[:2] for step in metadata_steps] == [
        ["scripts/sar_metadata.py", "check"],
        ["scripts/sar_metadata.py", "write"],
    ]
    assert metadata_steps[1][3:] == [
        "--author",
        PUBLISHER["Author"],
        "--source-code-url",
        PUBLISHER["SourceCodeUrl"],
    ]
    # Each sam command make would run, up to a shell operator (`make build` sends sam's output to a log).
    commands = [
        shlex.split(command[1])
        for line in dry_run.stdout.splitlines()
        if (command := re.match(r"\s*(sam [^<>|;&]*)", line))
    ]
    assert [c[:2] for c in commands] == [["sam", "build"], ["sam", "package"], ["sam", "publish"]]
    build, package, publish = (c[2:] for c in commands)
    # Each command line must parse with sam's own options, and each step read what the last wrote.
    # Where make runs them, with the session's build where `make build` puts it (a clean clone has none).
    (tmp_path / ".aws-sam").mkdir()
    (tmp_path / ".aws-sam" / "build").symlink_to(build_dir)
    monkeypatch.chdir(tmp_path)
    built = sam_build.make_context("build", [*build]).params  # click consumes the list it parses
    packing = sam_package.make_context("package", [*package])
    publishing = sam_publish.make_context("publish", [*publish])
    assert (
        Path(packing.params["template_file"]) == tmp_path / built["build_dir"] / "Functions" / "template.yaml"
    )
    assert packing.params["s3_bucket"] == ARTIFACTS
    assert (
        Path(publishing.params["template_file"]).resolve()
        == (tmp_path / packing.params["output_template_file"]).resolve()
    )
    assert tmp_path / metadata_steps[1][2] == Path(packing.params["template_file"])
    assert publishing.params["semantic_version"] is None  # the template's SemanticVersion, its one source
    assert packing.find_object(Context).region == publishing.find_object(Context).region == REGION
    # Run both steps for real on the session's build: package into moto, publish to the stub.
    packaged_path = tmp_path / "packaged.yaml"
    template = published_template(build_dir)
    package_with_moto(
        with_values(package, template_file=str(template), output_template_file=str(packaged_path))
    )
    packaged = yaml_parse(packaged_path.read_text(encoding="utf-8"))
    sar_client, stubber = client
    version = functions_template["Metadata"][METADATA]["SemanticVersion"]
    expected = _create_request(functions_template, packaged, version)
    stubber.add_response("create_application", {"ApplicationId": APPLICATION_ID}, expected)
    monkeypatch.setattr(serverlessrepo_publish, "boto3", SimpleNamespace(client=lambda *_, **__: sar_client))
    sam.main(["publish", *with_values(publish, template=str(packaged_path))], standalone_mode=False)


@pytest.fixture
def publisher_file(tmp_path: Path) -> Path:
    path = tmp_path / "publisher.toml"
    path.write_text('author = "Jane Doe"\nhome_page_url = "https://jane.dev/s3files"\nsource_code_url = ""\n')
    return path


@pytest.mark.parametrize(
    ("option", "value", "why"),
    [
        ("--author", "example", "Author 'example' is a placeholder"),
        ("--author", " ", "Author is empty"),
        ("--home-page-url", "https://github.com/example/s3files-lambda", "is a placeholder address"),
        ("--home-page-url", "https://www.example.com/app", "is a placeholder address"),
        ("--source-code-url", "http://github.com/jane-doe/s3files-lambda", "is not an https:// URL"),
        ("--source-code-url", "github.com/jane-doe/s3files-lambda", "is not an https:// URL"),
    ],
)
def test_placeholder_metadata_is_refused_naming_where_to_set_it(
    publisher_file: Path, option: str, value: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["check", *PUBLISHER_ARGS]
    arguments[arguments.index(option) + 1] = value
    assert sar_metadata(arguments, publisher_file) == 2
    err = capsys.readouterr().err
    assert why in err
    assert str(publisher_file) in err
    assert "AUTHOR=... HOME_PAGE_URL=... SOURCE_CODE_URL=..." in err


def test_the_file_gives_what_the_variables_do_not(
    publisher_file: Path, tmp_path: Path, functions_template: dict
) -> None:
    template = tmp_path / "template.yaml"
    template.write_text((REPO / "functions" / "template.yaml").read_text(encoding="utf-8"))
    # source_code_url is empty in the file: refused, and nothing written, until a variable gives it.
    original = template.read_text()
    assert sar_metadata(["write", str(template)], publisher_file) == 2
    assert template.read_text() == original
    url = "https://github.com/jane-doe/s3files-lambda"
    assert sar_metadata(["write", str(template), "--source-code-url", url], publisher_file) == 0
    written = yaml_parse(template.read_text())["Metadata"][METADATA]
    assert written == functions_template["Metadata"][METADATA] | {
        "Author": "Jane Doe",
        "HomePageUrl": "https://jane.dev/s3files",
        "SourceCodeUrl": url,
    }


def test_the_template_holds_no_publisher_placeholder_and_the_one_version(functions_template: dict) -> None:
    metadata = functions_template["Metadata"][METADATA]
    assert not {"Author", "HomePageUrl", "SourceCodeUrl"} & metadata.keys()
    assert "example" not in json.dumps(metadata)
    assert re.fullmatch(r"\d+\.\d+\.\d+", metadata["SemanticVersion"])
    # The repository's publisher file names no one yet: publishing refuses until it is filled in.
    assert sar_metadata(["check"]) == 2


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (["AUTHOR=example"], "Author 'example' is a placeholder"),
        (["VERSION=1.2.3"], "the version is SemanticVersion in functions/template.yaml"),
    ],
)
def test_make_publish_refuses_before_building(variables: list[str], message: str) -> None:
    done = make("publish", "BUCKET=my-artifacts", *variables)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "sam build" not in done.stdout
