"""Evaluate a checkpoint: ``python -m emomm.eval ckpt_path=PATH|latest [data=...]``.

The run itself is :func:`emomm.runs.evaluation.evaluate`; this entry point adds the command
line and the exits: a checkpoint that cannot load or data that cannot be scored end in one
error line that names it, not a traceback.
"""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from emomm.data.core.emotion_datamodule import DataError
from emomm.runs.evaluation import evaluate
from emomm.utils.runtime import CONFIG_DIR, offline_defaults
from emomm.utils.safe_load import exit_on_checkpoint_error


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    offline_defaults()
    with exit_on_checkpoint_error(DataError):   # data that cannot be scored: the message names it
        evaluate(cfg)


if __name__ == "__main__":
    main()
