"""Ensemble finished runs: ``python -m emomm.ensemble runs=[A,B] method=mean|weighted|stacking``.

The run itself is :func:`emomm.runs.ensembling.ensemble` (how members are read, lined up
and combined); this entry point adds the command line and the exits: a run or checkpoint
that cannot load ends in one error line that names it, not a traceback.
"""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from emomm.runs.ensembling import ensemble
from emomm.utils.runtime import CONFIG_DIR, offline_defaults
from emomm.utils.safe_load import exit_on_checkpoint_error


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="ensemble")
def main(cfg: DictConfig) -> None:
    offline_defaults()
    with exit_on_checkpoint_error():
        ensemble(cfg)


if __name__ == "__main__":
    main()
