"""Which runs a row pools (harness/run/pooling.py): runs slowed throughout by an epoch of interference are left out,
at least two runs stay; a single freak fast run never sets the bar; nothing is dropped from a group whose runs are
all alike."""

from harness.run.pooling import SLOWED_BAND, pool
from harness.store.record import RunRecord


def _runs(*medians, disturbed=()):
    return [RunRecord(run_id=f"r{i}", created_at="", status="ok", device="host", latency={"p50": m},
                      flags=["disturbed"] if i in disturbed else []) for i, m in enumerate(medians)]


def test_a_bimodal_group_pools_its_fast_epoch_and_names_the_slowed_runs():
    # the demo student's int8 runs on the AVX2 EPYC: 0.89-0.93 ms, or 1.19-1.22 ms for a whole run
    runs = _runs(0.908, 1.201, 0.894, 1.21, 0.921, 1.19)
    p = pool(runs)
    assert [r.run_id for r in p.kept] == ["r0", "r2", "r4"] and [r.run_id for r in p.slowed] == ["r1", "r3", "r5"]
    assert p.slowed_note().startswith("3 of 6 runs slowed throughout (runs r1, r3, r5: medians 31%-33% above the quiet runs'), left out")


def test_one_freak_fast_run_does_not_set_the_bar():
    p = pool(_runs(8.0, 10.0, 10.2, 10.1))
    assert len(p.kept) == 4 and not p.slowed


def test_runs_within_the_band_are_all_kept():
    meds = [10.0, 10.0 * (1 + SLOWED_BAND) - 1e-6, 10.3]
    assert pool(_runs(*meds)).kept == _runs(*meds) and not pool(_runs(*meds)).slowed


def test_two_runs_are_never_split():
    two = _runs(10.0, 14.0)
    assert pool(two).kept == two  # the bar is the second-fastest run


def test_a_disturbed_run_is_left_out_only_when_it_was_slower():
    p = pool(_runs(10.0, 14.0, 10.1, 13.0, disturbed=(0, 1)))
    assert [r.run_id for r in p.kept] == ["r0", "r2"]  # r0 was disturbed and as fast: it cost no time
    assert [r.run_id for r in p.disturbed] == ["r1"] and [r.run_id for r in p.slowed] == ["r3"]
