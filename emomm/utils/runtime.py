"""Environment defaults and config-to-object helpers shared by train and eval."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

log = logging.getLogger(__name__)

#: The Hydra config folder. An absolute path, because Hydra reads a relative config_path
#: as a *module* path when the entry point runs as a console script (emomm-train).
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def offline_defaults() -> None:
    """Never reach the network unless the user asked for it.

    An unset W&B mode with no API key fails the run, and a Hugging Face hub lookup hangs
    for ~47 s before failing offline, so both default to offline. Users who are online
    export WANDB_MODE=online / HF_HUB_OFFLINE=0 themselves.
    """
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def instantiate_dict(cfg: DictConfig | None) -> list[Any]:
    """Build every ``_target_`` entry of a group such as ``callbacks`` or ``logger``;
    entries set to null are switched off."""
    if not cfg:
        return []
    return [instantiate(c) for _, c in cfg.items() if c is not None and "_target_" in c]


def to_plain(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, (DictConfig, ListConfig)) else cfg


def resolve_ckpt(path: str, log_dir: str | Path) -> Path:
    """``latest`` -> the newest ``best.ckpt`` of any run under ``log_dir``; else the path."""
    if path == "latest":
        found = sorted(Path(log_dir).glob("**/checkpoints/best.ckpt"),
                       key=lambda p: p.stat().st_mtime)
        if not found:
            raise FileNotFoundError(f"ckpt_path=latest: no checkpoints/best.ckpt under {log_dir}; "
                                    "train a model first (python -m emomm.train)")
        return found[-1]
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"ckpt_path={p} does not exist; give a .ckpt file or ckpt_path=latest")
    return p
