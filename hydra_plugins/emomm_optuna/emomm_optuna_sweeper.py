"""Hydra Sweeper plugin ``hydra/sweeper=emomm_optuna``: Optuna (current versions) driving
Hydra's launcher. Hydra finds it by scanning the ``hydra_plugins`` namespace package; the
logic lives in :mod:`emomm.sweep.optuna_sweep` (optuna is imported only when a sweep runs).

No ``from __future__ import annotations`` here: Hydra loads plugin modules without
registering them in sys.modules, and dataclasses then cannot resolve string annotations."""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper


@dataclass
class EmommOptunaSweeperConf:
    _target_: str = "hydra_plugins.emomm_optuna.emomm_optuna_sweeper.EmommOptunaSweeper"
    study_name: str = "sweep"
    storage: Optional[str] = None          # default: sqlite:///<hydra.sweep.dir>/optuna.db
    n_trials: int = 20
    n_jobs: int = 1
    timeout_s: Optional[float] = None
    direction: Optional[str] = None        # default: from monitor_mode
    seed: int = 42
    n_startup_trials: int = 5
    pruner: Optional[Dict[str, Any]] = field(
        default_factory=lambda: {"n_startup_trials": 3, "n_warmup_steps": 2})
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="emomm_optuna", node=EmommOptunaSweeperConf,
                             provider="emomm")


class EmommOptunaSweeper(Sweeper):
    def __init__(self, **kwargs: Any) -> None:
        from emomm.sweep.optuna_sweep import OptunaSweep

        self.sweep_settings = OptunaSweep(**kwargs)
        self.config = None
        self.launcher = None
        self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        return self.sweep_settings.run(self.config, self.launcher, arguments,
                                       validate=self.validate_batch_is_legal)
