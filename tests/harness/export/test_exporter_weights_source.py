"""A checkpoint's weights are named for what is known of them: 'from checkpoint NAME@SHA' for any folder, 'trained
here: COMMAND' only for the weights `harness train`/`distill` wrote (their trained_by.json names the weights' sha256),
never 'trained' on faith (issue #28: a save_pretrained folder that was never trained showed 'weights trained')."""

from __future__ import annotations

import json
import sys

from harness.commands.train import _trained_by
from harness.export.exporter import TRAINED_BY, checkpoint_sha256, weights_source


def _checkpoint(folder, weights: bytes):
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "mobilebert"}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_a_folder_is_from_checkpoint_with_its_sha(tmp_path):
    ck = _checkpoint(tmp_path / "never-trained", b"\0" * 64)
    sha = checkpoint_sha256(ck)
    assert weights_source(ck, sha) == f"from checkpoint never-trained@{sha[:12]}"
    assert weights_source(None, None) == "random (untrained)"


def test_trained_here_only_for_the_weights_the_harness_wrote(tmp_path, monkeypatch):
    ck = _checkpoint(tmp_path / "student", b"\1" * 64)
    monkeypatch.setattr(sys, "argv", ["harness", "train", "--task", "rotten_tomatoes", "--model", "test-tiny"])
    _trained_by(ck)
    assert weights_source(ck, checkpoint_sha256(ck)) == "trained here: harness train --task rotten_tomatoes --model test-tiny"

    (ck / "model.safetensors").write_bytes(b"\2" * 64)  # trained further elsewhere: no longer what the harness wrote
    assert weights_source(ck, checkpoint_sha256(ck)).startswith("from checkpoint student@")

    other = _checkpoint(tmp_path / "copied", b"\3" * 64)  # the file copied beside weights it never described
    (other / TRAINED_BY).write_text((ck / TRAINED_BY).read_text())
    assert weights_source(other, checkpoint_sha256(other)).startswith("from checkpoint copied@")
    assert json.loads((ck / TRAINED_BY).read_text())["checkpoint_sha256"]
