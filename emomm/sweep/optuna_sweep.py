"""The sweep loop behind ``hydra/sweeper=emomm_optuna``: ask Optuna, launch, tell.

Why our own sweeper: Hydra's plugin (hydra-optuna-sweeper 1.3.0) pins optuna < 3; this one
uses current Optuna (TPE, MedianPruner, RDB storage) through Hydra's launcher, so any
launcher (basic in-process, submitit) runs the trials.

Robustness (what kills sweeps elsewhere):

* a trial whose job raises is told ``FAIL`` (with the error as a user attribute) and the
  sweep goes on with the next trial;
* the study lives in ``<sweep dir>/optuna.db`` (SQLite) and the sweep folder is named after
  the study, so the same command resumes an interrupted sweep: finished trials count
  towards ``n_trials`` and a trial left ``RUNNING`` by the interruption is marked ``FAIL``;
* TPE is seeded (``seed``), every job trains with the config's ``seed``.
"""
from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

from emomm.sweep.context import TrialContext, set_trial
from emomm.sweep.space import parse_space, to_override
from emomm.utils.atomic import atomic_open, atomic_write_text

log = logging.getLogger(__name__)

FINISHED = ("COMPLETE", "PRUNED", "FAIL")


def objective_value(ret: Any) -> float | None:
    """The job's return value as a finite float, or None (failed, missing or NaN)."""
    from hydra.core.utils import JobStatus

    if ret.status != JobStatus.COMPLETED:
        return None
    value = ret.return_value
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class OptunaSweep:
    """Settings of one sweep (the fields of ``hydra.sweeper``) and its loop.

    Args:
        study_name: study in the storage; also names the sweep folder in our configs.
        storage: an Optuna RDB URL; default ``sqlite:///<hydra.sweep.dir>/optuna.db``.
        n_trials: total trials of the study (a resumed sweep runs only the missing ones).
        n_jobs: trials launched together (>1 only helps with a parallel launcher; trials
            in a batch of more than one are not pruned, the callback has no trial to report to).
        timeout_s: launch no new trial after this many seconds of this invocation.
        direction: ``maximize`` / ``minimize``; default from the task's ``monitor_mode``.
        seed: TPE sampler seed.
        n_startup_trials: random trials before TPE models the space.
        pruner: MedianPruner arguments (``n_startup_trials``, ``n_warmup_steps``,
            ``interval_steps``), or null for no pruning.
        params: the search space, ``{key: "<hydra sweep syntax>"}`` (see ``emomm.sweep.space``).
    """

    def __init__(self, study_name: str = "sweep", storage: str | None = None, n_trials: int = 20,
                 n_jobs: int = 1, timeout_s: float | None = None, direction: str | None = None,
                 seed: int = 42, n_startup_trials: int = 5, pruner: dict[str, Any] | None = None,
                 params: dict[str, str] | None = None) -> None:
        if n_trials < 1 or n_jobs < 1:
            raise ValueError(f"hydra.sweeper: n_trials ({n_trials}) and n_jobs ({n_jobs}) must be >= 1")
        self.study_name, self.storage, self.n_trials, self.n_jobs = study_name, storage, n_trials, n_jobs
        self.timeout_s, self.direction, self.seed = timeout_s, direction, seed
        self.n_startup_trials, self.pruner, self.params = n_startup_trials, pruner, params

    def create_study(self, sweep_dir: Path, monitor_mode: str):
        import optuna

        direction = self.direction or ("maximize" if monitor_mode == "max" else "minimize")
        storage = self.storage or f"sqlite:///{(sweep_dir / 'optuna.db').resolve()}"
        sampler = optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=self.n_startup_trials)
        pruner = (optuna.pruners.MedianPruner(**self.pruner) if self.pruner is not None
                  else optuna.pruners.NopPruner())
        study = optuna.create_study(study_name=self.study_name, storage=storage, sampler=sampler,
                                    pruner=pruner, direction=direction, load_if_exists=True)
        stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,
                                                         optuna.trial.TrialState.WAITING))
        for t in stale:  # left behind by an interrupted sweep: never finished, so failed
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        if stale:
            log.warning("resumed study %s: %d unfinished trial(s) from the interrupted sweep marked FAIL",
                        self.study_name, len(stale))
        return study

    def run(self, config: DictConfig, launcher: Any, arguments: Sequence[str],
            validate: Any = None) -> Any:
        import optuna
        from optuna.trial import TrialState

        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        monitor = str(OmegaConf.select(config, "monitor", default="val/uar"))
        study = self.create_study(sweep_dir, str(OmegaConf.select(config, "monitor_mode", default="max")))
        space, fixed = parse_space(self.params, list(arguments))
        if not space:
            raise ValueError("hydra/sweeper=emomm_optuna: empty search space; set hydra.sweeper.params "
                             "or give sweep overrides such as model.optimizer.lr='tag(log,interval(1e-4,1e-2))'")
        done = len([t for t in study.trials if t.state.name in FINISHED])
        log.info("Optuna study %s in %s: %d/%d trials done; space %s; fixed %s", self.study_name,
                 sweep_dir, done, self.n_trials, {k: str(v) for k, v in space.items()}, fixed)
        start = time.time()
        while done < self.n_trials:
            if self.timeout_s is not None and time.time() - start > self.timeout_s:
                log.info("sweep timeout (%.0f s) reached after %d trials", self.timeout_s, done)
                break
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - done))]
            batch = [fixed + [to_override(k, v) for k, v in t.params.items()] for t in trials]
            ctx = TrialContext(trials[0], monitor) if len(trials) == 1 else None
            set_trial(ctx)
            try:
                if validate is not None:
                    validate(batch)
                returns = launcher.launch(batch, initial_job_idx=trials[0].number)
            except Exception as e:  # the batch could not even be composed or launched
                log.error("trials %s could not be launched: %s", [t.number for t in trials], e)
                for t in trials:
                    t.set_user_attr("error", f"{type(e).__name__}: {e}")
                    study.tell(t, state=TrialState.FAIL)
                done += len(trials)
                continue
            finally:
                set_trial(None)
            for t, ret in zip(trials, returns):
                t.set_user_attr("overrides", list(ret.overrides))
                run_dir = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg else None
                if run_dir:
                    t.set_user_attr("run_dir", str(run_dir))
                value = objective_value(ret)
                if value is None:
                    err = ret._return_value if not isinstance(ret._return_value, (int, float)) else "no value"
                    t.set_user_attr("error", f"{type(err).__name__}: {err}")
                    log.error("trial %d failed (%s); the sweep goes on", t.number, err)
                    study.tell(t, state=TrialState.FAIL)
                elif ctx is not None and ctx.pruned:
                    t.set_user_attr("pruned_at_epoch", ctx.pruned_at)
                    study.tell(t, state=TrialState.PRUNED)
                else:
                    study.tell(t, value)
            done += len(trials)
            write_results(study, sweep_dir, monitor)
        write_results(study, sweep_dir, monitor)
        return study


def write_results(study: Any, sweep_dir: Path, monitor: str) -> None:
    """``trials.csv`` (every trial: state, value, params, run dir, error) and
    ``optimization_results.yaml`` (best value, params and overrides) in the sweep folder."""
    trials = study.trials
    keys = sorted({k for t in trials for k in t.params})
    with atomic_open(sweep_dir / "trials.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", monitor, "duration_s", *keys, "pruned_at_epoch", "run_dir", "error"])
        for t in trials:
            dur = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else ""
            w.writerow([t.number, t.state.name, "" if t.value is None else t.value, dur,
                        *[t.params.get(k, "") for k in keys], t.user_attrs.get("pruned_at_epoch", ""),
                        t.user_attrs.get("run_dir", ""), t.user_attrs.get("error", "")])
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    result: dict[str, Any] = {"study_name": study.study_name, "monitor": monitor,
                              "direction": study.direction.name.lower(),
                              "n_trials": len(trials),
                              "states": {s: sum(t.state.name == s for t in trials) for s in FINISHED}}
    if complete:
        best = study.best_trial
        result |= {"best_trial": best.number, "best_value": best.value, "best_params": best.params,
                   "best_overrides": best.user_attrs.get("overrides", []),
                   "best_run_dir": best.user_attrs.get("run_dir", "")}
    atomic_write_text(sweep_dir / "optimization_results.yaml", OmegaConf.to_yaml(OmegaConf.create(result)))
