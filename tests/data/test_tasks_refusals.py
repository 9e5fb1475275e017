"""Task files, configs and catalogs that would give wrong numbers
or tracebacks are refused in one line naming the culprit."""

from __future__ import annotations

import pytest

from data import load_task
from common.errors import BadInput


def _csv(tmp_path, rows, header="text,label"):
    f = tmp_path / "task.csv"
    f.write_text(header + "\n" + "\n".join(rows) + "\n")
    return f


@pytest.mark.parametrize("labels, says", [
    (["0.5", "1.5"], "is not an integer"),
    (["pos", "neg"], "is not a class number"),
])
def test_task_labels_must_be_class_numbers(tmp_path, labels, says):
    rows = [f"review number {i} was {'good' if i % 2 else 'bad'},{labels[i % 2]}" for i in range(200)]
    with pytest.raises(BadInput, match=says):
        load_task(str(_csv(tmp_path, rows)), split="dev")


def test_integer_labels_written_as_text_or_floats_are_read(tmp_path):
    rows = [f"review number {i},{'1.0' if i % 2 else '0'}" for i in range(200)]
    data = load_task(str(_csv(tmp_path, rows)), split="dev")
    assert set(data.labels.tolist()) <= {0, 1} and data.num_labels == 2


def test_missing_column_names_the_column_and_no_flag_that_does_not_exist(tmp_path):
    f = _csv(tmp_path, [f"t{i},1" for i in range(50)], header="review,label")
    with pytest.raises(BadInput, match=r"no column 'text'.*the file has review, label") as e:
        load_task(str(f))
    assert "--text-column" not in str(e.value)


@pytest.mark.parametrize("id2label, says", [
    ({"zero": "NEG", "one": "POS"}, "id2label key 'zero' is not a class number"),
    ({"0": "NEG", "2": "POS"}, r"keys must be 0..1"),
    (["NEG", "POS"], "must map class numbers"),
])
def test_config_id2label_keys_are_checked(id2label, says):
    from model.config import MobileBertConfig

    with pytest.raises(ValueError, match=says):
        MobileBertConfig.from_hf_dict({"id2label": id2label})


@pytest.mark.parametrize("toml, says", [
    ('[b]\nabi = "arm64-v8a"\ntransport = "ssh"\naddress = "a@h"\n[b.options]\nconnect_timeout = "abc"\n',
     "connect_timeout must be a number of seconds"),
    ('[b]\nabi = "x86_64"\ntransport = "qemu"\n', 'abi must be "arm64-v8a"'),
])
def test_catalog_entries_that_cannot_work_are_refused(tmp_path, toml, says):
    from device_runners.catalog import get_profile

    f = tmp_path / "devices.toml"
    f.write_text(toml)
    with pytest.raises(BadInput, match=says):
        get_profile("b", extra=f)
