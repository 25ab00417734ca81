"""The benchmark's arithmetic (benchmarks/als_strategies.py), on known answers."""

import importlib.util
import os
import sys

import pytest

_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, _DIR)  # the script imports its sibling _common
    try:
        spec = importlib.util.spec_from_file_location(
            "als_strategies", os.path.join(_DIR, "als_strategies.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(_DIR)
    return module


def test_marginal_and_fixed_cost_split_two_fits(bench):
    # 10 iterations in 30 s, 2 in 12 s: 18 s for 8 more iterations, 7.5 s paid once
    out = bench.marginal_fixed(3.0, 10, 6.0, 2)
    assert out["marginal"] == pytest.approx(2.25)
    assert out["fixed"] == pytest.approx(7.5)


def test_crossover_is_the_first_executor_count_past_the_shuffle(bench):
    # 64 MB of factors x (E + 1) passes a 139 MB shuffle from E = 2 (192 MB), not at E = 1
    (line,) = bench.crossovers(64e6, {"half_gridify exact": 139e6})
    assert "from 2 executors" in line
