"""Train a model: ``python -m emomm.train [overrides]`` (console script ``emomm-train``).

The run itself is :func:`emomm.runs.training.train`; this entry point adds the command line
and the exits: data that cannot train, a damaged checkpoint and a full disk end in one error
line, not a traceback. Returns the best value of ``cfg.monitor`` so Hydra sweepers can
optimise it.
"""
from __future__ import annotations

import errno
import logging
import sys

import hydra
from omegaconf import DictConfig

from emomm.data.core.emotion_datamodule import DataError
from emomm.runs.training import train
from emomm.utils.resume import DamagedCheckpointError
from emomm.utils.runtime import CONFIG_DIR, offline_defaults

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    offline_defaults()
    try:
        summary = train(cfg)
    except DataError as err:  # data that cannot train as asked: the message names the files and the fix
        log.error("the data cannot be used: %s", err)
        sys.exit(1)
    except DamagedCheckpointError as err:  # names the file and how to go on: no traceback
        log.error("%s", err)
        sys.exit(f"error: {err}")
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        log.error("%s", err)  # the file it names was left as it was (atomic writes)
        sys.exit(f"error: {err}. Free some space, then run the same command with ckpt_path=last to continue "
                 "from the last checkpoint written")
    key = cfg.monitor.split("/", 1)[-1]
    value = summary["best_val"].get(key)
    return None if value is None else float(value)


if __name__ == "__main__":
    main()
