"""The record schema's list check: a list of numbers is checked at C speed (a report reads every stored record, each
with its raw latencies), and that fast path says exactly what the value-by-value check says, for any list."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from program.schema import items, number, record_problem


def _one_by_one(values, lo=0.0, hi=math.inf):
    """The value-by-value check, as items() did it before its fast path."""
    each = number(lo, hi, optional=False)
    for i, x in enumerate(values):
        problem = each(x, f"latencies_ms[{i}]")
        if problem:
            return problem
    return None


VALUE = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**400, 10**400), st.booleans(),
                  st.none(), st.text(max_size=3), st.floats(0, 1e6))


@settings(max_examples=300, deadline=None)
@given(st.lists(VALUE, max_size=12), st.sampled_from([(0.0, math.inf), (1.0, 100.0), (-math.inf, math.inf)]))
def test_the_fast_path_says_what_the_value_by_value_check_says(values, bounds):
    assert items(number(*bounds, optional=False), 1000)(values, "latencies_ms") == _one_by_one(values, *bounds)


def test_a_poisoned_latency_is_named_by_its_index():
    base = {"run_id": "r1", "created_at": "2026-12-06T00:00:00+00:00", "status": "ok", "device": "host",
            "emulated": False}
    assert record_problem({**base, "latencies_ms": [1.0, 2.0, 3.5]}) is None
    assert record_problem({**base, "latencies_ms": [1.0, float("nan"), 3.0]}) == "latencies_ms[1] is nan, not a finite number"
    assert record_problem({**base, "latencies_ms": [1.0, 2.0, True]}) == "latencies_ms[2] is True, not a number"
    assert record_problem({**base, "latencies_ms": [1.0, -2.0]}) == "latencies_ms[1] is -2.0, not a number from 0 to inf"
    assert record_problem({**base, "latencies_ms": [1e308, 1e308]}) is None  # a sum that overflows: looked at one by one
    huge = 10**400  # json reads it; float() of it overflows, so every report that met it would crash
    assert record_problem({**base, "load_ms": huge}).startswith("load_ms is 1000000000")
    assert record_problem({**base, "latencies_ms": [1.0, huge]}).startswith("latencies_ms[1] is 1000000000")
