"""The data layer on the real offline corpus: the documented split, tokenization, clear errors."""

import numpy as np
import pytest

from data import SPLITS, encode, get_tokenizer, list_tasks, load_task, split_of
from common.errors import BadInput


@pytest.fixture(scope="module")
def rt():
    return {s: load_task("rotten_tomatoes", split=s) for s in SPLITS}


def test_rotten_tomatoes_splits_are_fixed_disjoint_and_complete(rt):
    sizes = {s: len(d) for s, d in rt.items()}
    assert sum(sizes.values()) == 12808  # every fresh/rotten snippet, no 'plot' row
    assert sizes == {"train": 10169, "dev": 1290, "test": 1349}  # the published split: changing it breaks numbers
    sets = {s: set(d.texts) for s, d in rt.items()}
    assert not (sets["train"] & sets["dev"]) and not (sets["train"] & sets["test"]) and not (sets["dev"] & sets["test"])
    dev = rt["dev"]
    assert dev.num_labels == 2 and dev.metric == "accuracy" and dev.labels.dtype == np.int64
    assert set(np.unique(dev.labels)) == {0, 1}
    assert 0.5 < dev.labels.mean() < 0.65  # 'fresh' is the majority, as in the corpus
    assert "rotten_tomatoes_corpus_full" in dev.source
    assert load_task("rotten_tomatoes", "dev", limit=7).texts == dev.texts[:7]


def test_tokenizer_is_bert_base_uncased_and_encode_pads_and_truncates():
    tok = get_tokenizer()
    assert tok.get_vocab_size() == 30522
    enc = encode(tok, ["Hello world, a GREAT movie!", "x " * 50], seq_len=8)
    assert set(enc) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(v.shape == (2, 8) and v.dtype == np.int64 for v in enc.values())
    assert enc["input_ids"][0].tolist() == [101, 7592, 2088, 1010, 1037, 2307, 3185, 102]  # lowercased wordpieces
    assert enc["input_ids"][1, -1] == 102 and enc["attention_mask"][1].all()  # truncated, [SEP] kept
    short = encode(tok, ["ok"], seq_len=6)
    assert short["input_ids"][0].tolist() == [101, 7929, 102, 0, 0, 0]
    assert short["attention_mask"][0].tolist() == [1, 1, 1, 0, 0, 0]


def test_local_csv_with_custom_columns(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = [f"review number {i} is {'good' if i % 2 else 'bad'}" for i in range(200)]
    path.write_text("body,y\n" + "".join(f"{r},{i % 2}\n" for i, r in enumerate(rows)))
    parts = [load_task(str(path), s, text_column="body", label_column="y") for s in SPLITS]
    assert sum(len(p) for p in parts) == 200
    assert all(split_of(t) == p_split for p, p_split in zip(parts, SPLITS) for t in p.texts)
    assert parts[0].name == "reviews" and parts[0].num_labels == 2
    with pytest.raises(BadInput, match="no column 'text'.*the file has body, y"):
        load_task(str(path), "train")


def test_bad_inputs_name_the_culprit(tmp_path):
    with pytest.raises(BadInput, match="unknown task 'nope'.*rotten_tomatoes"):
        load_task("nope")
    with pytest.raises(BadInput, match="missing.csv does not exist"):
        load_task(str(tmp_path / "missing.csv"))
    with pytest.raises(BadInput, match="unknown split 'validation'"):
        load_task("rotten_tomatoes", split="validation")
    with pytest.raises(BadInput, match="no tokenizer.json or vocab.txt"):
        get_tokenizer(tmp_path)
    assert "rotten_tomatoes" in list_tasks() and "sst2" in list_tasks()
