"""Optuna sweeps: search-space grammar, pruning callback, resume bookkeeping, and a real
sweep through `python -m emomm.train hparams_search=...` with a failing trial and a resume."""
import csv
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml

from emomm.sweep.context import TrialContext, set_trial
from emomm.sweep.optuna_sweep import OptunaSweep
from emomm.sweep.pruning import OptunaPruning
from emomm.sweep.space import parse_space, to_override

ROOT = Path(__file__).resolve().parents[1]
D = optuna.distributions


def test_search_space_uses_hydra_sweep_syntax():
    space, fixed = parse_space(
        {"lr": "tag(log, interval(1e-4, 1e-2))", "fusion": "choice(attention, gated)", "layers": "range(1, 4)",
         "drop": "range(0.0, 0.5, step=0.1)", "hidden": "tag(int, interval(16, 64))", "wd": "0.1"},
        ["data.root=/x", "lr=interval(0.1, 0.2)", "+extra=choice(true,false)"])
    assert space["lr"] == D.FloatDistribution(0.1, 0.2)  # the command line wins
    assert space["fusion"] == D.CategoricalDistribution(["attention", "gated"])
    assert space["layers"] == D.IntDistribution(1, 3)    # Hydra's range stop is exclusive
    assert space["drop"].high == pytest.approx(0.4) and space["drop"].step == pytest.approx(0.1)
    assert space["hidden"] == D.IntDistribution(16, 64)
    assert space["+extra"] == D.CategoricalDistribution([True, False])
    assert fixed == ["wd=0.1", "data.root=/x"]
    assert [to_override("a", None), to_override("b", True), to_override("c", 0.5)] == ["a=null", "b=true", "c=0.5"]
    with pytest.raises(ValueError, match="unsupported sweep"):
        parse_space({"x": "glob(*)"}, [])


def _fake_trainer(value, epoch=0):
    return SimpleNamespace(sanity_checking=False, is_global_zero=True, current_epoch=epoch,
                           callback_metrics={"val/uar": value}, should_stop=False)


def test_pruning_callback_reports_the_curve_and_stops_the_job():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    cb = OptunaPruning()
    trial = study.ask()
    ctx = TrialContext(trial, "val/uar")
    set_trial(ctx)
    try:
        good = _fake_trainer(0.8, epoch=0)
        cb.on_validation_end(good, None)
        assert not good.should_stop and not ctx.pruned
        bad = _fake_trainer(0.2, epoch=1)
        cb.on_validation_end(bad, None)
        assert bad.should_stop and ctx.pruned and ctx.pruned_at == 1
        assert trial.storage.get_trial(trial._trial_id).intermediate_values == {0: 0.8, 1: 0.2}
    finally:
        set_trial(None)
    idle = _fake_trainer(0.0)  # no sweep running: nothing happens
    cb.on_validation_end(idle, None)
    assert not idle.should_stop


def test_a_pruned_job_says_so_in_its_metrics(cfg_factory):
    """A job the pruner stops writes ``pruned_at_epoch`` into metrics.json (emomm.compare
    shows it), and trains no further epoch; an unpruned job writes no such key."""
    from emomm.train import train

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.5))
    ctx = TrialContext(study.ask(), "val/uar")  # every val/uar is below 1.5: pruned at once
    set_trial(ctx)
    try:
        pruned = train(cfg_factory(["hparams_search=face_optuna", *TINY, "trainer.max_epochs=3"], subdir="p"))
    finally:
        set_trial(None)
    assert pruned["pruned_at_epoch"] == 0 and pruned["epochs"] == 1
    full = train(cfg_factory(["hparams_search=face_optuna", *TINY], subdir="f"))
    assert "pruned_at_epoch" not in full and full["epochs"] == 2


def test_resume_marks_interrupted_trials_failed(tmp_path):
    sweep = OptunaSweep(study_name="s", n_trials=3)
    study = sweep.create_study(tmp_path, "max")
    t = study.ask()
    study.tell(t, 0.5)
    study.ask()  # left RUNNING, as after a kill
    again = sweep.create_study(tmp_path, "max")
    assert [x.state.name for x in again.trials] == ["COMPLETE", "FAIL"]
    assert (tmp_path / "optuna.db").is_file() and again.direction.name == "MAXIMIZE"


TINY = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=16",
        "data.n_train=14", "data.n_val=7", "data.n_test=7", "trainer.max_epochs=2",
        "+trainer.enable_progress_bar=false", "hydra.sweeper.seed=0"]


def _sweep(log_dir, n_trials):
    cmd = [sys.executable, "-m", "emomm.train", "hparams_search=face_optuna", *TINY, f"paths.log_dir={log_dir}",
           f"hydra.sweeper.n_trials={n_trials}", "data.batch_size=choice(0,7)"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    sweep_dir = log_dir / "train" / "sweeps" / "face_optuna"
    return sweep_dir, list(csv.DictReader(open(sweep_dir / "trials.csv")))


def _check_failures_recorded(tmp_path):
    sweep_dir, rows = _sweep(tmp_path, 3)
    states = [r["state"] for r in rows]
    assert len(rows) == 3 and "FAIL" in states and "COMPLETE" in states, rows
    for r in rows:
        bs = int(r["data.batch_size"])
        assert (r["state"] == "FAIL") == (bs == 0)
        if bs == 0:
            assert "data.batch_size must be >= 1" in r["error"]
        else:
            assert 0.0 <= float(r["val/uar"]) <= 1.0 and Path(r["run_dir"]) == sweep_dir / r["number"]
            assert (sweep_dir / r["number"] / "metrics.json").is_file()
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert best["states"]["FAIL"] == states.count("FAIL") and "data.batch_size=7" in best["best_overrides"]
    return rows


def test_sweep_records_failed_trials_and_goes_on(tmp_path):
    """batch_size=0 makes a trial fail (the datamodule rejects it): recorded FAIL, the sweep
    goes on with the next trial."""
    _check_failures_recorded(tmp_path)


@pytest.mark.slow
def test_sweep_resumes_with_the_same_command(tmp_path):
    """The same command with more trials resumes the SQLite study in the sweep folder."""
    rows = _check_failures_recorded(tmp_path)
    _, resumed = _sweep(tmp_path, 4)
    assert len(resumed) == 4 and resumed[:3] == rows  # earlier trials kept, one new trial run
