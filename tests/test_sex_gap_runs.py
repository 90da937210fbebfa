"""benchmarks/sex_gap_runs.py: the gap of one eval, and paired differences between sets of runs."""
from __future__ import annotations

import pytest

from tests.test_configs import _bench_module


def _metrics(uar: float, female: float, male: float) -> dict:
    return {"metrics": {"uar": uar},
            "test_groups": {"groups": {"female": {"uar": female}, "male": {"uar": male}},
                            "gap": {"uar": {"abs": abs(female - male), "abs_ci": [-0.1, 0.2]}}}}


def test_gap_is_signed_female_minus_male():
    mod = _bench_module("sex_gap_runs")
    assert mod.run_gap(_metrics(0.7, 0.6, 0.8))["gap_female_minus_male"] == pytest.approx(-0.2)
    assert mod.run_gap(_metrics(0.7, 0.8, 0.6))["gap_ci95"] == [-0.1, 0.2]


def test_later_sets_are_paired_with_the_first_by_order():
    mod = _bench_module("sex_gap_runs")
    a = [mod.run_gap(_metrics(0.6, 0.7, 0.5)), mod.run_gap(_metrics(0.7, 0.7, 0.7))]
    b = [mod.run_gap(_metrics(0.7, 0.7, 0.7)), mod.run_gap(_metrics(0.7, 0.8, 0.6))]
    out = mod.summarize({"single": a, "multi": b})
    assert out["single"]["mean_uar"] == pytest.approx(0.65)
    paired = out["multi"]["paired_vs_single"]
    # pair 1: gap 0.2 -> 0.0; pair 2: gap 0.0 -> 0.2: the gap moves 0 on average, UAR +0.05
    assert paired["gap_female_minus_male"] == pytest.approx(0.0) and paired["uar"] == pytest.approx(0.05)
    assert paired["n_pairs"] == 2 and "paired_vs_single" not in out["single"]
