"""Packaging: one version, a license file, classifiers and project URLs in the metadata."""

from __future__ import annotations

import importlib.metadata
import tomllib

import stepstone
from tests.conftest import ROOT


def test_the_version_is_written_in_one_place() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert importlib.metadata.version("stepstone") == stepstone.__version__


def test_license_classifiers_and_urls_are_in_the_metadata() -> None:
    meta = importlib.metadata.metadata("stepstone")
    assert meta["License-Expression"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    classifiers = meta.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    assert any(c.startswith("Programming Language :: Python :: 3.11") for c in classifiers)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues"} <= set(urls)
