"""`sam build` of a clean copy of the application (tests/conftest.py): the functions and the layer
land in the nested application's folder, where Lambda, `sam local invoke` and `make invoke` look."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.yamlhelper import yaml_parse
from template_model import NESTED_ID, REPO
from testkit import FUNCTION_IDS as FUNCTIONS


@pytest.fixture(scope="module")
def app_dir(build_dir: Path) -> Path:
    return build_dir / NESTED_ID


def test_layer_package_is_under_python(app_dir: Path) -> None:
    layer = app_dir / "SharedLayer"
    assert (layer / "python" / "s3files_store" / "__init__.py").is_file()
    assert (layer / "python" / "s3files_store" / "commit.py").is_file()
    assert not (layer / "python" / "python").exists(), "layer content nested twice: check ContentUri"


def test_layer_bundles_powertools(app_dir: Path) -> None:
    assert (app_dir / "SharedLayer" / "python" / "aws_lambda_powertools" / "__init__.py").is_file()


def test_layer_holds_no_compiled_module(app_dir: Path) -> None:
    # Declared compatible with x86_64 and arm64 (Architecture): only pure Python can serve both.
    compiled = [p for p in (app_dir / "SharedLayer").rglob("*") if p.suffix in {".so", ".pyd", ".dylib"}]
    assert compiled == []


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_handler_is_built(app_dir: Path, function: str) -> None:
    assert (app_dir / function / "app.py").is_file()
    assert not (app_dir / function / "template.yaml").exists(), "the functions template is not code"


def test_built_templates_point_at_build_output(build_dir: Path, app_dir: Path) -> None:
    root = yaml_parse((build_dir / "template.yaml").read_text())
    assert root["Resources"][NESTED_ID]["Properties"]["Location"] == f"{NESTED_ID}/template.yaml"
    built = yaml_parse((app_dir / "template.yaml").read_text())["Resources"]
    for name in FUNCTIONS:
        assert built[name]["Properties"]["CodeUri"] == name
    assert built["SharedLayer"]["Properties"]["ContentUri"] == "SharedLayer"


def test_prefix_list_lookup_is_built_in_the_root_stack(build_dir: Path) -> None:
    # The created VPC's custom resource (template.yaml, not the SAR application): its code alone.
    built = yaml_parse((build_dir / "template.yaml").read_text())["Resources"]["PrefixListLookupFunction"]
    assert built["Properties"]["CodeUri"] == "PrefixListLookupFunction"
    assert sorted(p.name for p in (build_dir / "PrefixListLookupFunction").iterdir()) == ["app.py"]
    assert not (build_dir / NESTED_ID / "PrefixListLookupFunction").exists()


@pytest.mark.parametrize("package", ["s3files_store", "aws_lambda_powertools"])
def test_layer_ships_unchecked_hash_bytecode(app_dir: Path, package: str) -> None:
    # Lambda's /opt is read-only: without .pyc every cold start compiles the layer. Flags 0b01 in
    # the header (PEP 552): hash-based and unchecked, so unzipped file times cannot invalidate them.
    sources = sorted((app_dir / "SharedLayer" / "python" / package).rglob("*.py"))
    assert sources
    for source in sources:
        compiled = Path(importlib.util.cache_from_source(str(source)))
        assert compiled.is_file(), f"{source} has no .pyc"
        assert int.from_bytes(compiled.read_bytes()[4:8], "little") == 0b01, compiled


@pytest.mark.parametrize("function", FUNCTIONS)
def test_sam_local_invoke_finds_the_nested_function_with_its_layer_and_env_vars(
    build_dir: Path, app_dir: Path, function: str
) -> None:
    # What `sam local invoke Functions/<id> --env-vars events/env.json` hands the container, computed
    # by SAM CLI's own code up to the point where it needs Docker.
    stacks, _ = SamLocalStackProvider.get_stacks(str(build_dir / "template.yaml"))
    env_vars = json.loads((REPO / "events" / "env.json").read_text())
    runner = LocalLambdaRunner(
        None,  # the container runtime: never reached here
        SamFunctionProvider(stacks),
        cwd=str(build_dir),
        real_path=str(build_dir),
        env_vars_values=env_vars,
    )
    found = runner.provider.get(f"{NESTED_ID}/{function}")
    assert found is not None
    assert runner.provider.get(function) == found  # the bare logical id finds it too
    config = runner.get_invoke_config(found)
    assert Path(config.code_abs_path) == app_dir / function
    assert [Path(layer.codeuri) for layer in config.layers] == [app_dir / "SharedLayer"]
    environment = config.env_vars.resolve()
    expected = {**env_vars["Parameters"], **env_vars[function]}
    assert {name: environment[name] for name in expected} == expected
