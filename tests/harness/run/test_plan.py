"""One command, one comparison: several programs (or recipes) run as one campaign in interleaved rounds, in a
recorded shuffled order, with more rounds where runs disagree; bad plan flags are refused before anything runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.errors import BadInput
from harness.run.measure import RunRequest
from harness.run.plan import CampaignPlan, needs_more, run_plan
from harness.store.db import ResultsStore
from harness.store.record import RunRecord


class FakeDevice:
    """Stands in for measure.run only in these scheduler tests: each request's runs take the medians given."""

    def __init__(self, medians: dict[str, list[float]]):
        self.medians = {k: list(v) for k, v in medians.items()}
        self.order: list[tuple[str, int]] = []

    def __call__(self, req: RunRequest, results, label, session=None) -> RunRecord:
        name = str(req.program)
        self.order.append((name, req.schedule["round"]))
        p50 = self.medians[name].pop(0) if len(self.medians[name]) > 1 else self.medians[name][0]
        return RunRecord(run_id=f"{name}{len(self.order)}", created_at="", status="ok", device="host",
                         latency={"p50": p50}, campaign=req.campaign, schedule=req.schedule)


def _plan(names, **kw):
    return CampaignPlan([RunRequest.of(program=n) for n in names], **kw)


def test_interleaved_rounds_hold_every_program_once_in_a_recorded_shuffled_order(tmp_path):
    dev = FakeDevice({n: [1.0] for n in "ABCD"})
    recs = run_plan(_plan("ABCD", rounds=3, seed=42), tmp_path, measure=dev)
    rounds = [[n for n, r in dev.order if r == k] for k in (1, 2, 3)]
    assert all(sorted(r) == list("ABCD") for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # the order changes between rounds
    assert {r.schedule["seed"] for r in recs} == {42} and {r.campaign for r in recs} == {recs[0].campaign}
    again = FakeDevice({n: [1.0] for n in "ABCD"})
    run_plan(_plan("ABCD", rounds=3, seed=42), tmp_path, measure=again)
    assert again.order == dev.order  # the recorded seed replays the schedule
    blocks = FakeDevice({n: [1.0] for n in "AB"})
    run_plan(_plan("AB", rounds=2, schedule="blocks"), tmp_path, measure=blocks)
    assert [n for n, _ in blocks.order] == ["A", "A", "B", "B"]


def test_more_rounds_only_where_runs_disagree_and_never_past_the_cap(tmp_path):
    dev = FakeDevice({"A": [10.0, 10.01, 10.02], "B": [10.0, 10.5, 10.0, 10.5, 10.0, 10.5, 10.0]})
    recs = run_plan(_plan("AB", rounds=2, target_ci=0.02, max_rounds=6), tmp_path, measure=dev)
    a = [r for r in recs if r.run_id.startswith("A")]
    b = [r for r in recs if r.run_id.startswith("B")]
    assert len(a) == 2  # settled after the first two rounds: no extra runs
    assert len(b) == 6 and max(r.schedule["round"] for r in b) == 6  # disagreeing: extra rounds up to the cap
    assert needs_more(b, 0.02) and not needs_more(a, 0.02)


def test_slowed_runs_do_not_hold_a_program_back_once_its_quiet_runs_agree(tmp_path):
    """Runs slowed throughout (14 ms against 10 ms: an epoch of interference) are left out as the report leaves them
    out (harness/run/pooling.py); the program is settled once three quiet runs agree, not run to the cap."""
    dev = FakeDevice({"B": [10.0, 14.0, 10.05, 14.1, 10.0, 14.0, 10.0, 14.0]})
    recs = run_plan(_plan("B", rounds=2, target_ci=0.02, max_rounds=8), tmp_path, measure=dev)
    assert [r.latency.p50 for r in recs] == [10.0, 14.0, 10.05, 14.1, 10.0]
    assert not needs_more(recs, 0.02) and needs_more(recs[:4], 0.02)


@pytest.mark.parametrize("kw, message", [
    (dict(target_ci=0.0), "--target-ci 0: a share of the median between 0.001"),
    (dict(target_ci=float("nan")), "--target-ci nan"),
    (dict(rounds=0), "--repeat 0: between 1 and 1000"),
    (dict(rounds=3, max_rounds=2), "--max-repeats 2: between --repeat (3) and 1000"),
    (dict(max_seconds=-5.0), "--max-campaign-seconds -5: a positive number"),
    (dict(schedule="nonsense"), "--schedule 'nonsense': one of interleaved, blocks"),
])
def test_bad_plan_flags_are_one_line_and_nothing_runs(tmp_path, kw, message):
    dev = FakeDevice({"A": [1.0]})
    with pytest.raises(BadInput) as e:
        run_plan(_plan("A", **kw), tmp_path, measure=dev)
    assert message in str(e.value) and dev.order == []


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


FAST = ["--timing", "quick", "--min-seconds", "0", "--warmup-seconds", "0", "--iterations", "12", "--warmup", "1"]


def test_two_programs_on_the_command_line_make_one_interleaved_campaign(tiny, tiny_export, tmp_path):
    res = _cli("--results", tmp_path / "r", "run", "--program", tiny[0], "--program", tiny_export[1].program,
               "--repeat", 2, "--seed", 7, *FAST)
    assert res.returncode == 0, res.stderr
    runs = ResultsStore(tmp_path / "r").runs()
    assert len(runs) == 4 and len({r.campaign for r in runs}) == 1  # today's bug: only the last program ran
    assert sorted(r.schedule["round"] for r in runs) == [1, 1, 2, 2]
    assert {r.program_path for r in runs} == {str(tiny[0].resolve()), str(tiny_export[1].program.resolve())}
    assert {r.schedule["schedule"] for r in runs} == {"interleaved"} and {r.schedule["seed"] for r in runs} == {7}


@pytest.mark.parametrize("args, message", [
    (["--target-ci", "0"], "--target-ci 0"),
    (["--max-repeats", "-1"], "--max-repeats -1"),
    (["--schedule", "nonsense"], "--schedule"),
    (["--repeat", "0"], "--repeat 0"),
])
def test_bad_plan_flags_on_the_command_line(tiny, tmp_path, args, message):
    res = _cli("--results", tmp_path / "r", "run", "--program", tiny[0], *args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "r" / "runs.sqlite").exists() or not ResultsStore(tmp_path / "r").runs()


def test_the_same_program_twice_is_refused(tiny, tmp_path):
    res = _cli("--results", tmp_path / "r", "run", "--program", tiny[0], "--program", tiny[0])
    assert res.returncode == 2 and "the same program is given twice" in res.stderr


def test_a_device_that_stays_busy_is_waited_for_once_per_campaign(tmp_path):
    waits = []

    def busy_device(req, results, label, session=None):
        waits.append(req.gates.wait_for_quiet)
        return RunRecord(run_id=f"r{len(waits)}", created_at="", status="ok", device="host", latency={"p50": 1.0},
                         device_info_before={"quiet_gate": {"passed": False} if req.gates.wait_for_quiet else {}})

    said = []
    plan = CampaignPlan([RunRequest.of(program=n, wait_for_quiet=20.0) for n in "AB"], rounds=2)
    run_plan(plan, tmp_path, measure=busy_device, say=said.append)
    assert waits == [20.0, 0.0, 0.0, 0.0] and any("stayed busy for 20 s" in s for s in said)


def test_each_program_is_scored_once_then_timed_only(tmp_path):
    """MLPerf's accuracy and performance modes: a request's first run that scores writes and scores its outputs;
    its later runs are told not to (settings.score False) and name the scored run. A first run that failed to score
    leaves the next one to do it."""
    seen: list[tuple[str, int, bool, str | None]] = []

    def dev(req, results, label, session=None):
        name, rnd = str(req.program), req.schedule["round"]
        seen.append((name, rnd, req.settings.score, req.schedule.get("accuracy_from")))
        failed = name == "B" and rnd == 1  # B's first run fails before it scores
        return RunRecord(run_id=f"{name}{rnd}", created_at="", status="failed" if failed else "ok", device="host",
                         latency={"p50": 1.0}, campaign=req.campaign, schedule=req.schedule,
                         accuracy=None if failed or not req.settings.score else {"task": "t", "n": 8, "value": 0.5})

    run_plan(_plan("AB", rounds=3, seed=1), tmp_path, measure=dev)
    by = {(n, r): (score, src) for n, r, score, src in seen}
    assert [by[("A", r)] for r in (1, 2, 3)] == [(True, None), (False, "A1"), (False, "A1")]
    assert [by[("B", r)] for r in (1, 2, 3)] == [(True, None), (True, None), (False, "B2")]


def test_a_repeated_run_scores_its_examples_once_and_the_report_keeps_the_accuracy(tiny_export, tmp_path):
    res = _cli("--results", tmp_path / "r", "run", "--program", tiny_export[1].program, "--repeat", 3,
               "--task", "rotten_tomatoes", "--samples", 8, *FAST)
    assert res.returncode == 0, res.stderr
    runs = sorted(ResultsStore(tmp_path / "r").runs(), key=lambda r: r.schedule["round"])
    first, later = runs[0], runs[1:]
    assert first.accuracy and first.accuracy.n == 8 and first.accuracy.agreement_fp32 is not None
    assert [r.accuracy for r in later] == [None, None]
    assert [r.schedule["accuracy_from"] for r in later] == [first.run_id] * 2
    assert res.stdout.count(f"accuracy: scored in run {first.run_id} of this campaign") == 2
    report = _cli("--results", tmp_path / "r", "report", "--format", "json")
    import json

    rows = json.loads(report.stdout)["table"]
    assert len(rows) == 1 and rows[0]["accuracy_n"] == 8 and rows[0]["n_runs"] == 3
    assert rows[0]["agreement_fp32"] == first.accuracy.agreement_fp32


def test_a_quiet_reading_is_reused_moments_later_until_a_run_finds_other_work(tmp_path, monkeypatch):
    """Half a second of /proc/stat before every run of a campaign is not needed when the device was found quiet
    seconds ago and every run since found nothing else on its CPUs (its own evidence watched them)."""
    from harness.run import plan as plan_mod

    seen, contended = [], {"B1": True}  # B's run finds other work on its CPUs

    def dev(req, results, label, session=None):
        rid = f"{req.program}{req.schedule['round']}"
        seen.append((rid, req.gates.quiet_seen))
        gate = {"passed": True, **({"reused": req.gates.quiet_seen} if req.gates.quiet_seen else {})}
        return RunRecord(run_id=rid, created_at="", status="ok", device="host", latency={"p50": 1.0},
                         device_info_before={"quiet_gate": gate},
                         device_info_after={"during": {"disturbance": {"contended": contended.get(rid, False)}}})

    plan = CampaignPlan([RunRequest.of(program=n, wait_for_quiet=20.0) for n in "ABCD"], rounds=1,
                        schedule="blocks")
    run_plan(plan, tmp_path, measure=dev)
    assert [(rid, q and q["from_run"]) for rid, q in seen] == [("A1", None), ("B1", "A1"), ("C1", None),
                                                              ("D1", "C1")]
    monkeypatch.setattr(plan_mod, "QUIET_REUSE_S", 0.0)  # too long ago: every run probes
    seen.clear()
    run_plan(plan, tmp_path, measure=dev)
    assert [q for _, q in seen] == [None] * 4


def test_a_run_given_a_quiet_reading_records_it_and_does_not_probe(tiny, tmp_path):
    from harness.run import measure

    req = RunRequest.of(program=tiny[0], iterations=3, warmup=1, min_seconds=0, warmup_seconds=0,
                        wait_for_quiet=20.0, quiet_seen={"from_run": "abc123", "age_s": 2.5})
    gate = measure.run(req, tmp_path).device_info_before["quiet_gate"]
    assert gate["passed"] is True and gate["reused"] == {"from_run": "abc123", "age_s": 2.5}
    assert "readings" not in gate
