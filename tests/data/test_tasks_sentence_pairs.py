"""Sentence-pair GLUE tasks (MRPC, QNLI, RTE, ...): both sentences reach the program, the second as token type 1.
`datasets.load_dataset` is stood in for (no network here); offline, the task says so in one line."""

from __future__ import annotations

import numpy as np
import pytest

import data
from common.errors import BadInput


def test_pair_task_encodes_both_sentences_with_token_types(monkeypatch):
    import datasets

    asked = []

    def load_dataset(path, name=None, split=None, **kw):
        asked.append((path, name, split))
        return datasets.Dataset.from_dict({"question": ["Where is the tower?", "Who wrote it?"],
                                           "sentence": ["The tower is in Paris.", "It rained all day."],
                                           "label": [0, 1], "idx": [0, 1]})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    task = data.load_task("qnli", split="dev")
    assert asked == [("glue", "qnli", "validation")]
    assert task.texts[0] == "Where is the tower?" and task.pairs[0] == "The tower is in Paris."
    assert task.num_labels == 2 and task.labels.tolist() == [0, 1]
    enc = data.encode(data.get_tokenizer(), task.texts, seq_len=32, pairs=task.pairs)
    ids, types = enc["input_ids"][0], enc["token_type_ids"][0]
    sep = np.flatnonzero(ids == 102)
    assert len(sep) == 2  # [CLS] question [SEP] sentence [SEP]
    assert (types[: sep[0] + 1] == 0).all() and (types[sep[0] + 1 : sep[1] + 1] == 1).all()
    assert "mrpc" in data.list_tasks() and "rte" in data.list_tasks() and "mnli" in data.list_tasks()


def test_pair_task_offline_is_one_line(monkeypatch):
    import datasets

    def offline(*a, **kw):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(BadInput, match="task 'mrpc' needs the Hugging Face hub"):
        data.load_task("mrpc", split="dev")
    with pytest.raises(BadInput, match="rte has no labelled test split"):
        data.load_task("rte", split="test")
