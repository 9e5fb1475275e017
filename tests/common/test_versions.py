"""Recorded versions are what importlib.metadata says, read without importing it (every run records them)."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from common import versions


@pytest.mark.parametrize("dist", ["torch", "executorch", "torchao", "harness", "numpy", "click", "typing_extensions",
                                  "typing-extensions", "Click", "no-such-distribution-here"])
def test_version_is_importlib_metadatas(dist):
    try:
        expected = metadata.version(dist)
    except metadata.PackageNotFoundError:
        expected = "missing"
    assert versions.version(dist) == expected


def test_stack_names_the_pinned_libraries_and_does_not_import_importlib_metadata():
    code = ("import sys; had = 'importlib.metadata' in sys.modules; from common import versions; "
            "s = versions.stack(); print(sorted(s), 'importlib.metadata' in sys.modules and not had)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("] ")
    assert out[0] + "]" == str(sorted(["harness", "python", "torch", "executorch", "torchao"]))
    assert out[1].strip() == "False"


def test_a_distribution_found_only_as_egg_info_falls_back_to_importlib_metadata(tmp_path, monkeypatch):
    egg = tmp_path / "eggy_dist-3.2.1.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: eggy-dist\nVersion: 3.2.1\n\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert versions.version("eggy-dist") == "3.2.1"
