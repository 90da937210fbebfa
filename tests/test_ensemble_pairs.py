"""emomm.analysis.ensemble_pairs: ensembles paired by position, and their gain over each set;
benchmarks.ravdess_pair, which trains the pairs and scores them with it."""
from __future__ import annotations

import os
import subprocess
import time
import sys
from pathlib import Path

import pytest

from emomm.analysis.ensemble_pairs import summarize
from tests.test_configs import _bench_module

ROOT = Path(__file__).resolve().parents[1]


def _row(ens: float, cnn: float, ge2e: float) -> dict:
    m = lambda u: {"uar": u, "acc": u, "f1_macro": u}  # noqa: E731
    return {"ensemble": m(ens), "members": {"cnn": m(cnn), "ge2e": m(ge2e)}}


def test_gain_is_paired_per_ensemble_not_between_means():
    out = summarize([_row(0.74, 0.72, 0.71), _row(0.70, 0.65, 0.69)], ["cnn", "ge2e"])
    assert out["ensemble"]["uar"]["mean"] == pytest.approx(0.72)
    assert out["cnn"]["uar"]["mean"] == pytest.approx(0.685)
    assert out["gain_over_cnn"]["uar"]["mean"] == pytest.approx((0.02 + 0.05) / 2)
    assert out["gain_over_ge2e"]["uar"]["std"] == pytest.approx(0.02 ** 0.5 / 10)   # +0.03, +0.01: sample std
    single = summarize([_row(0.7, 0.6, 0.5)], ["cnn", "ge2e"])
    assert single["ensemble"]["uar"]["std"] is None


def test_unequal_sets_and_missing_checkpoints_are_refused(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "emomm.analysis.ensemble_pairs", *a], cwd=tmp_path,  # noqa: E731
                                    capture_output=True, text=True, timeout=120,
                                    env={**os.environ, "PYTHONPATH": str(ROOT)})
    r = run("--set", "a", str(tmp_path), str(tmp_path), "--set", "b", str(tmp_path))
    assert r.returncode != 0 and "same number of runs" in r.stderr
    r = run("--set", "a", str(tmp_path), "--set", "b", str(tmp_path))
    assert r.returncode != 0 and "no checkpoints/best.ckpt" in r.stderr
    # a recorded result is never replaced unless asked (RESULTS.md quotes these files)
    (tmp_path / "ravdess_cnn_ge2e.json").write_text("{}")
    r = run("--out", "ravdess_cnn_ge2e.json", "--set", "a", str(tmp_path), "--set", "b", str(tmp_path))
    assert r.returncode != 0 and "ravdess_cnn_ge2e.json exists" in r.stderr and "--overwrite" in r.stderr
    assert (tmp_path / "ravdess_cnn_ge2e.json").read_text() == "{}"


def test_pair_members_train_at_once_each_with_the_seed_and_its_own_folder(tmp_path, monkeypatch):
    mod = _bench_module("ravdess_pair")
    calls = []

    def fake_training(overrides, log_dir):
        calls.append((overrides, log_dir))
        time.sleep(0.4)
        return {"run_dir": str(log_dir)}

    monkeypatch.setattr(mod, "run_training", fake_training)
    trained, wall = mod.train_pair(["ravdess_voice", "ravdess_ge2e"], ["data.root=R"], 7, tmp_path)
    assert wall < 0.75          # side by side, not one after the other (0.8 s)
    assert set(trained) == {"ravdess_voice", "ravdess_ge2e"}
    by_experiment = {overrides[0]: (overrides, log_dir) for overrides, log_dir in calls}
    for experiment in ("ravdess_voice", "ravdess_ge2e"):
        overrides, log_dir = by_experiment[f"experiment={experiment}"]
        assert overrides == [f"experiment={experiment}", "data.root=R", "seed=7"]
        assert log_dir == tmp_path / "seed_7" / experiment
