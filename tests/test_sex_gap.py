"""emomm.analysis.sex_gap: the gap of one eval, and paired differences between sets of runs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from emomm.analysis.sex_gap import run_gap, summarize

ROOT = Path(__file__).resolve().parents[1]


def _metrics(uar: float, female: float, male: float) -> dict:
    return {"metrics": {"uar": uar},
            "test_groups": {"groups": {"female": {"uar": female}, "male": {"uar": male}},
                            "gap": {"uar": {"abs": abs(female - male), "abs_ci": [-0.1, 0.2]}}}}


def test_gap_is_signed_female_minus_male():
    assert run_gap(_metrics(0.7, 0.6, 0.8))["gap_female_minus_male"] == pytest.approx(-0.2)
    assert run_gap(_metrics(0.7, 0.8, 0.6))["gap_ci95"] == [-0.1, 0.2]


def test_later_sets_are_paired_with_the_first_by_order():
    a = [run_gap(_metrics(0.6, 0.7, 0.5)), run_gap(_metrics(0.7, 0.7, 0.7))]
    b = [run_gap(_metrics(0.7, 0.7, 0.7)), run_gap(_metrics(0.7, 0.8, 0.6))]
    out = summarize({"single": a, "multi": b})
    assert out["single"]["mean_uar"] == pytest.approx(0.65)
    paired = out["multi"]["paired_vs_single"]
    # pair 1: gap 0.2 -> 0.0; pair 2: gap 0.0 -> 0.2: the gap moves 0 on average, UAR +0.05
    assert paired["gap_female_minus_male"] == pytest.approx(0.0) and paired["uar"] == pytest.approx(0.05)
    assert paired["n_pairs"] == 2 and "paired_vs_single" not in out["single"]


def test_runs_without_a_checkpoint_or_a_set_without_runs_are_refused_before_any_eval(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "emomm.analysis.sex_gap", *a], cwd=tmp_path,  # noqa: E731
                                    capture_output=True, text=True, timeout=120,
                                    env={**os.environ, "PYTHONPATH": str(ROOT)})
    finished = tmp_path / "finished"
    (finished / "checkpoints").mkdir(parents=True)
    (finished / "checkpoints" / "best.ckpt").write_bytes(b"")
    r = run("--set", "a", str(finished), "--set", "b", str(tmp_path / "empty"))
    assert r.returncode != 0 and "empty: no checkpoints/best.ckpt" in r.stderr
    assert not (finished / "sex_gap").exists()          # no eval ran for the finished one either
    r = run("--set", "a", str(finished), "--set", "b")
    assert r.returncode != 0 and "--set b: give its run folders" in r.stderr
    (tmp_path / "kept.json").write_text("{}")
    r = run("--out", "kept.json", "--set", "a", str(finished))
    assert r.returncode != 0 and "kept.json exists" in r.stderr and "--overwrite" in r.stderr
    assert (tmp_path / "kept.json").read_text() == "{}"
