"""pyproject.toml's filterwarnings, as pytest applies them around every test: a deprecation in the
project's own code fails the suite; the SAM CLI's and the SAM translator's are hidden."""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING

import pytest
import samcli.lib.samlib.wrapper
import samtranslator.validator.validator

from s3files_store import mount

if TYPE_CHECKING:
    from types import ModuleType

WARN = "import warnings\nwarnings.warn('old API', DeprecationWarning, stacklevel=1)"


def warn_from(module: ModuleType) -> None:
    """Emit a DeprecationWarning attributed to `module` (the warning machinery reads __name__)."""
    exec(compile(WARN, module.__file__ or module.__name__, "exec"), dict(vars(module)))


@pytest.mark.parametrize("module", [mount, sys.modules[__name__]], ids=["layer", "tests"])
def test_the_projects_own_deprecations_fail(module: ModuleType) -> None:
    with pytest.raises(DeprecationWarning, match="old API"):
        warn_from(module)


@pytest.mark.parametrize("module", [samcli.lib.samlib.wrapper, samtranslator.validator.validator])
def test_the_sam_tools_deprecations_are_hidden(module: ModuleType) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warn_from(module)
    assert seen == []
