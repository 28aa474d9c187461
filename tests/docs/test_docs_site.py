"""The documentation site (docs/, mkdocs.yml) builds with --strict, so a broken link, anchor or API
reference fails the suite; and every link of the README into the site lands on a page and an anchor
the build produced."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import REPO

MKDOCS = Path(sys.executable).parent / "mkdocs"
# Markdown links [text](target), outside code spans.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def build(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--config-file", str(project / "mkdocs.yml"), "--site-dir", site],
        cwd=project,
        env=os.environ | {"NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("docs") / "site"
    done = build(REPO, site)
    assert done.returncode == 0, done.stdout + done.stderr
    return site


def page_ids(site: Path, page: str) -> set[str]:
    """The ids of the built page of docs/<page> (index.md is the site's root)."""
    name = page.removesuffix(".md")
    html = site / ("index.html" if name == "index" else f"{name}/index.html")
    assert html.is_file(), f"docs/{page} built no {html.relative_to(site)}"
    return set(re.findall(r'\bid="([^"]+)"', html.read_text()))


def test_the_site_builds_with_every_page_and_the_layers_api(site: Path) -> None:
    for page in sorted(p.name for p in (REPO / "docs").glob("*.md")):
        page_ids(site, page)
    # mkdocstrings read the layer: the stable calls have their entries.
    api = page_ids(site, "api.md")
    for name in ("commit.commit", "stream.atomic_writer", "listing.list_documents", "exceptions.StoreError"):
        assert f"s3files_store.{name}" in api
    # Offline: no web font requested by any page.
    assert not [p for p in site.rglob("*.html") if "fonts.googleapis.com" in p.read_text()]


def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(REPO / "docs", project / "docs")
    shutil.copy2(REPO / "mkdocs.yml", project / "mkdocs.yml")
    (project / "layers").mkdir()
    (project / "layers" / "shared").symlink_to(REPO / "layers" / "shared")
    guide = project / "docs" / "extending.md"
    guide.write_text(guide.read_text() + "\nSee [the moved page](operations.md#alarms).\n")
    done = build(project, tmp_path / "site")
    assert done.returncode != 0
    assert "operations.md" in done.stdout + done.stderr


def test_every_readme_link_resolves(site: Path) -> None:
    readme = (REPO / "README.md").read_text()
    targets = LINK.findall(re.sub(r"`[^`]*`", "", readme))
    into_site = [t for t in targets if t.startswith("docs/")]
    assert len(into_site) >= 10  # the README's pointers into the site
    for target in targets:
        assert "://" not in target, f"README links outside the repository: {target}"
        path, _, anchor = target.partition("#")
        assert (REPO / path).is_file(), f"README links to {path}, which does not exist"
        if path.startswith("docs/"):
            ids = page_ids(site, path.removeprefix("docs/"))
            assert not anchor or anchor in ids, f"README links to {target}: no such anchor in the built page"
        else:
            assert not anchor, f"README links to {target}: anchors are checked only in the site"
