"""A program that answers one class for every example says so next to its accuracy: that accuracy is the class's
share and its agreement with fp32 is trivial (issue #28: an untrained 4-layer checkpoint scored 'accuracy 0.3600',
the share of label 0, with agreement 1.000 and a passing gate)."""

from __future__ import annotations

import numpy as np

from harness.reports.report import render
from harness.run.accuracy import score
from harness.store.record import RunRecord


def test_one_class_for_all_is_named_with_the_class_share():
    logits = np.tile([2.0, -1.0], (50, 1))  # class 0 every time
    labels = np.array([0] * 18 + [1] * 32)
    ref = logits + 0.01
    out = score(logits, labels, ref)
    assert out["value"] == 0.36 and out["agreement_fp32"] == 1.0  # what looked like a real result
    assert out["one_class"] == {"class": 0, "n": 50}
    assert out["one_class_note"] == "one class (0) for all 50: accuracy = that class's share (0.3600); agreement is trivial"
    assert out["label_share"] == {"0": 0.36, "1": 0.64} and out["predicted_share"] == {"0": 1.0}


def test_a_model_that_answers_both_classes_has_no_such_note():
    logits = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    out = score(logits, np.array([0, 1, 1]), logits)
    assert "one_class" not in out and out["predicted_share"] == {"0": 0.6667, "1": 0.3333}


def test_the_report_carries_the_note():
    acc = score(np.tile([2.0, -1.0], (20, 1)), np.array([0] * 5 + [1] * 15), None)
    rec = RunRecord(run_id="r1", created_at="", status="ok", device="host", model="m", recipe="fp32", seq_len=8,
                    runner="native", threads=1, timing="default", latencies_ms=[1.0 + 0.01 * i for i in range(60)],
                    accuracy={**acc, "task": "rotten_tomatoes"})
    from harness.run.stats import summarize
    from harness.store.record import Latency

    rec.latency = Latency.from_json(summarize(rec.latencies_ms))
    text = render([rec], "md")
    assert "one class (m fp32 on host): one class (0) for all 20: accuracy = that class's share (0.2500)" in text


def test_agreement_comes_with_the_class_balance_it_was_measured_on():
    logits = np.tile([2.0, -1.0], (20, 1))
    acc = score(logits, np.array([0] * 5 + [1] * 15), logits + 0.01)
    assert acc["reference_share"] == {"0": 1.0}
    rec = RunRecord(run_id="r1", created_at="", status="ok", device="host", model="m", recipe="fp32", seq_len=8,
                    runner="native", threads=1, timing="default", latencies_ms=[1.0 + 0.01 * i for i in range(60)],
                    accuracy={**acc, "task": "rotten_tomatoes"})
    from harness.run.stats import summarize
    from harness.store.record import Latency

    rec.latency = Latency.from_json(summarize(rec.latencies_ms))
    assert ("agreement measured on 20 rotten_tomatoes examples: labels 0: 25%, 1: 75%; fp32 answered 0: 100%"
            in render([rec], "md"))
