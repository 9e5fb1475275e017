"""A campaign reaches each device through one session: one connection, one model and work-folder check, one
verified runner install and one tokenization of the task, however many runs it makes; each run still reads the
device's state itself, and a fault mid-campaign costs one run, not the rest."""

from __future__ import annotations

import pytest

from device_runners import bundle_install
from harness.run import inputs, measure
from harness.run.plan import CampaignPlan, run_plan
from harness.run.request import DeviceTarget, RunRequest
from harness.run.session import DeviceSession
from harness.store.db import ResultsStore


def _counting(monkeypatch, module, name):
    """Wrap the real module.name, counting its calls (it still does its work)."""
    real, calls = getattr(module, name), []

    def counted(*a, **kw):
        calls.append(a)
        return real(*a, **kw)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_campaign_connects_installs_and_tokenizes_once(tiny_export, monkeypatch):
    results, res = tiny_export
    installs = _counting(monkeypatch, bundle_install, "install_bundle")
    tokenized = _counting(monkeypatch, inputs, "from_task")
    req = RunRequest.of(res.program, "host", warmup=1, iterations=3, task="rotten_tomatoes", samples=4)
    with DeviceSession(req.device) as session:
        recs = [measure.run(req, results, session=session) for _ in range(3)]
        assert session.transport is not None  # still open between runs
    assert session.transport is None  # closed with the session
    assert all(r.status in ("ok", "invalid") for r in recs), [r.error for r in recs]  # invalid: few iterations
    assert session.connections == 1 and len(installs) == 1 and len(tokenized) == 1
    # every run still reads the device's state before and after itself
    assert all(r.device_info_before.get("cores") and r.device_info_after.get("cores") for r in recs)
    assert len({r.run_id for r in recs}) == 3 and all(ResultsStore(results).get(r.run_id) for r in recs)


def test_run_plan_opens_one_session_per_device_and_closes_it(tiny_export, monkeypatch):
    results, res = tiny_export
    opened: list[DeviceSession] = []
    real_open = DeviceSession.open

    def spy(self):
        if self not in opened:
            opened.append(self)
        return real_open(self)

    monkeypatch.setattr(DeviceSession, "open", spy)
    reqs = [RunRequest.of(res.program, "host", warmup=1, iterations=3, threads=t) for t in (1, 2)]
    recs = run_plan(CampaignPlan(reqs, rounds=2), results)
    assert len(recs) == 4 and all(r.status in ("ok", "invalid") for r in recs), [r.error for r in recs]
    assert len(opened) == 1 and opened[0].connections == 1 and opened[0].transport is None


def test_a_fault_mid_campaign_costs_one_run_and_the_next_connects_again(tiny_export, monkeypatch):
    results, res = tiny_export
    req = RunRequest.of(res.program, "host", warmup=1, iterations=3)
    with DeviceSession(req.device) as session:
        first = measure.run(req, results, session=session)
        transport = session.transport
        real_push, failed = transport.push, []

        def drop_once(*a, **kw):  # the connection drops while the program is pushed
            if not failed:
                failed.append(a)
                raise OSError("connection reset by peer")
            return real_push(*a, **kw)

        monkeypatch.setattr(transport, "push", drop_once)
        second = measure.run(req, results, session=session)
        third = measure.run(req, results, session=session)
    assert first.status in ("ok", "invalid") and third.status in ("ok", "invalid"), third.error
    assert second.status == "failed" and "connection reset by peer" in second.error
    assert session.connections == 2  # the fault closed the session; the third run connected again


def test_a_session_refuses_a_request_for_another_device(tiny_export):
    results, res = tiny_export
    with DeviceSession(DeviceTarget("emu-arm64")) as session:
        with pytest.raises(ValueError, match="cannot run a request for host"):
            measure.run(RunRequest.of(res.program, "host"), results, session=session)
