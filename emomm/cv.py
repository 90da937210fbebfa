"""K-fold cross-validation: ``python -m emomm.cv <train overrides> folds=5``.

One Hydra multirun, one job per fold (``fold=0..folds-1``), each a full ``emomm.train`` run
in ``<sweep dir>/fold_K/``. Corpora with speakers (RAVDESS, CREMA-D and their video
versions: data configs with a ``fold`` key) are split by actor (``data.fold=K`` of
``data.n_folds=folds``; any explicit speaker lists of a recipe are dropped); every other
dataset pools its splits and takes fold K of a seeded stratified k-fold (``data.cv_fold``).
When all folds are done, ``cv_folds.csv``, ``cv_summary.md`` and ``cv_summary.json`` hold the
per-fold table and the mean +- std of every metric (:mod:`emomm.analysis.cv_summary`).
"""
from __future__ import annotations

import hydra
from omegaconf import DictConfig, open_dict

from emomm.runs.training import train
from emomm.utils.runtime import CONFIG_DIR, offline_defaults


def apply_fold(cfg: DictConfig) -> str:
    """Set fold ``cfg.fold`` of ``cfg.folds`` in ``cfg.data``; returns ``speaker`` or
    ``stratified``."""
    fold, folds = int(cfg.fold), int(cfg.folds)
    if not 0 <= fold < folds:
        raise ValueError(f"fold={fold} must be in 0..{folds - 1} (folds={folds})")
    with open_dict(cfg):
        if "fold" in cfg.data:
            cfg.data.fold, cfg.data.n_folds = fold, folds
            for key in ("train_speakers", "val_speakers", "test_speakers"):
                if key in cfg.data:
                    cfg.data[key] = None
            return "speaker"
        cfg.data.cv_fold, cfg.data.cv_folds = fold, folds
        return "stratified"


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="cv")
def main(cfg: DictConfig) -> float | None:
    offline_defaults()
    apply_fold(cfg)
    summary = train(cfg)
    value = summary["best_val"].get(cfg.monitor.split("/", 1)[-1])
    return None if value is None else float(value)


if __name__ == "__main__":
    main()
