"""SQuAD scoring checked by hand: the official normalisation, EM and F1 (v1.1 and v2.0 rules), the span search,
and windows with offsets over the small real-looking file in tests/fixtures (which an oracle answers perfectly)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data import get_tokenizer
from common.errors import BadInput
from data.squad import Features, QAExample, features, is_qa_task, load_qa_task
from harness.run import squad
from tests.support.paths import FIXTURES

DATA = FIXTURES
V1, V2 = DATA / "squad-tiny.json", DATA / "squad-v2-tiny.json"


def test_normalisation_is_the_official_one():
    assert squad.normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert squad.normalize_answer("an apple, a pear; the end.") == "apple pear end"
    assert squad.normalize_answer("Theatre") == "theatre"  # articles only as whole words
    assert squad.normalize_answer("1,230 km") == "1230 km"  # punctuation inside numbers goes too


def test_exact_match_and_f1_by_hand():
    assert squad.exact_match("the North Sea", "North Sea") == 1.0
    assert squad.f1_score("North Sea", "the North Sea") == 1.0
    # pred {north, sea, in, netherlands} vs gold {north, sea}: P = 2/4, R = 2/2, F1 = 2*0.5*1/1.5 = 2/3
    assert squad.f1_score("North Sea in the Netherlands", "the North Sea") == pytest.approx(2 / 3)
    assert squad.f1_score("Lake Geneva", "Lake Constance") == pytest.approx(0.5)  # P = R = 1/2
    assert squad.f1_score("Paris", "Lake Constance") == 0.0
    # v1.1 gives the empty prediction 0 F1; v2.0 scores it 1 only against an empty gold
    assert squad.f1_score("", "Neil Armstrong") == 0.0
    assert squad.f1_score("", "", version_2=True) == 1.0 and squad.f1_score("Mars", "", version_2=True) == 0.0


def test_evaluate_takes_the_best_gold_answer_and_averages():
    exs = [QAExample("a", "q", "c", ["the North Sea", "North Sea"]), QAExample("b", "q", "c", ["Lake Constance"])]
    got = squad.evaluate(exs, {"a": "North Sea", "b": "Lake Geneva"})
    assert got["exact_match"] == pytest.approx(0.5) and got["f1"] == pytest.approx(0.75)  # (1 + 0.5) / 2
    assert got["n"] == 2 and got["has_answer"] == 2 and got["no_answer"] == 0
    v2 = [QAExample("x", "q", "c", []), QAExample("y", "q", "c", ["1928"])]
    got = squad.evaluate(v2, {"x": "", "y": "in 1928"}, version_2=True)
    assert got["exact_match"] == pytest.approx(0.5)  # "" right for x; "in 1928" is not exact
    assert got["f1"] == pytest.approx((1 + 2 / 3) / 2) and got["no_answer"] == 1  # y: P = 1/2, R = 1: F1 2/3


def _one_window(context_tokens: int) -> Features:
    offs = [None] + [(i * 5, i * 5 + 4) for i in range(context_tokens)] + [None]
    return Features({}, np.zeros(1, dtype=np.int64), [offs], doc_stride=1, max_query_len=1)


def test_span_search_obeys_order_length_and_the_null_threshold():
    ctx = "aaaa bbbb cccc dddd eeee"
    ex = [QAExample("q", "?", ctx, ["cccc"])]
    feats = _one_window(5)
    start, end = np.zeros((1, 7)), np.zeros((1, 7))
    start[0, 3], end[0, 3] = 5.0, 4.0  # tokens 1..5 are the context words: token 3 is "cccc"
    assert squad.predict(ex, feats, start, end) == {"q": "cccc"}
    end[0, 1] = 9.0  # an end before the start is never taken: best valid span is still 3..3
    assert squad.predict(ex, feats, start, end) == {"q": "cccc"}
    end[0, 1], end[0, 5] = 0.0, 6.0
    assert squad.predict(ex, feats, start, end) == {"q": "cccc dddd eeee"}
    assert squad.predict(ex, feats, start, end, max_answer_len=2) == {"q": "cccc"}
    start[0, 0], end[0, 0] = 50.0, 50.0  # [CLS] is never an answer span; in v2.0 it is "no answer"
    assert squad.predict(ex, feats, start, end) == {"q": "cccc dddd eeee"}
    assert squad.predict(ex, feats, start, end, version_2=True) == {"q": ""}
    assert squad.predict(ex, feats, start, end, version_2=True, null_threshold=100.0) == {"q": "cccc dddd eeee"}


def test_windows_overlap_and_an_oracle_on_them_scores_100_percent():
    tok = get_tokenizer()
    task = load_qa_task(str(V1))
    assert task.version == "1.1" and len(task) == 9 and task.examples[0].id == "rhine-1"
    feats = features(tok, task.examples, seq_len=64)
    assert (feats.doc_stride, feats.max_query_len) == (21, 10)  # MLPerf's 128 / 64 at 384, scaled to 64
    ids = feats.arrays["input_ids"]
    assert ids.shape == (len(feats.offsets), 64) and len(feats.offsets) > len(task)  # long contexts: several windows
    assert set(np.unique(feats.arrays["token_type_ids"])) == {0, 1}
    rhine = [f for f, e in enumerate(feats.example_index) if e == 0]
    assert len(rhine) >= 3 and (ids[rhine, 0] == 101).all()  # every window starts [CLS] question [SEP]
    # an oracle that puts its logits on the gold answer's tokens, wherever a window holds it whole
    start = np.full(ids.shape, -10.0)
    end = np.full(ids.shape, -10.0)
    for f, e in enumerate(feats.example_index):
        ex = task.examples[e]
        a0, a1 = ex.answer_starts[0], ex.answer_starts[0] + len(ex.answers[0])
        toks = [i for i, o in enumerate(feats.offsets[f]) if o is not None and o[0] < a1 and o[1] > a0]
        if toks and feats.offsets[f][toks[0]][0] == a0 and feats.offsets[f][toks[-1]][1] == a1:
            start[f, toks[0]], end[f, toks[-1]] = 10.0, 10.0
    preds = squad.predict(task.examples, feats, start, end)
    assert preds["rhine-4"] == "coal, grain and steel" and preds["apollo-2"] == "20 July 1969"
    assert squad.evaluate(task.examples, preds) == {"exact_match": 1.0, "f1": 1.0, "n": 9, "has_answer": 9,
                                                     "no_answer": 0}


def test_v2_file_has_unanswerable_questions():
    task = load_qa_task(str(V2))
    assert task.version == "2.0" and len(task) == 11
    assert [ex.id for ex in task.examples if not ex.answers] == ["rhine-x", "apollo-x"]


def test_what_counts_as_a_squad_file(tmp_path):
    assert is_qa_task("squad") and is_qa_task("squad_v2") and is_qa_task(str(V1))
    (tmp_path / "records.json").write_text(json.dumps([{"text": "a", "label": 1}]))
    assert not is_qa_task(str(tmp_path / "records.json")) and not is_qa_task("rotten_tomatoes")


@pytest.mark.parametrize("drop, where", [
    (lambda d: d["data"][0]["paragraphs"][0].pop("context"), r"data\[0\]\.paragraphs\[0\] has no 'context'"),
    (lambda d: d["data"][1]["paragraphs"][0]["qas"][2].pop("question"), r"data\[1\]\.paragraphs\[0\]\.qas\[2\] has no 'question'"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][1].pop("answer_start"), r"answers\[1\] has no 'answer_start'"),
    (lambda d: d["data"][2]["paragraphs"][0]["qas"][0].update(answers=[]), r"qas\[0\] has no answers and is not marked"),
])
def test_missing_fields_are_named(tmp_path, drop, where):
    doc = json.loads(V1.read_text())
    drop(doc)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(BadInput, match=where):
        load_qa_task(str(path))


def test_too_short_a_sequence_is_refused():
    with pytest.raises(BadInput, match="too short for question answering"):
        features(get_tokenizer(), load_qa_task(str(V1)).examples, seq_len=6)
