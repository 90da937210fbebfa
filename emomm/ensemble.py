"""Ensemble finished runs: ``python -m emomm.ensemble runs=[A,B] method=mean|weighted|stacking``.

Each run's model scores the same dataset (each takes the modalities it knows from the batch,
so a face model and a voice model combine on paired data); probabilities are mapped to the
data's label order and combined (:mod:`emomm.models.ensemble`). Writes the run folder of a
training run: metrics.json (``test`` = the ensemble, ``test_models`` = each run alone),
confusion matrix, and ``ensemble.csv``.
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig

from emomm.eval import eval_datamodule
from emomm.labels import label_mapping
from emomm.models.ensemble import combine
from emomm.models.metrics import build_metrics, build_per_class
from emomm.models.module import EmotionModule
from emomm.utils.artifacts import metrics_table, save_confusion_matrix, write_json
from emomm.utils.runtime import CONFIG_DIR, offline_defaults, to_plain

log = logging.getLogger(__name__)


def resolve_run(path: str) -> Path:
    """A run folder (-> its checkpoints/best.ckpt) or a checkpoint file."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "checkpoints" / "best.ckpt"
    if not p.is_file():
        raise FileNotFoundError(f"runs: {path} is neither a run folder with checkpoints/best.ckpt nor a .ckpt file")
    return p


def run_name(ckpt: Path) -> str:
    return ckpt.parent.parent.name if ckpt.parent.name == "checkpoints" else ckpt.stem


def to_data_order(probs: torch.Tensor, model_labels: list[str], data_labels: list[str], name: str) -> torch.Tensor:
    """``[N, K_model]`` -> ``[N, K_data]``, renormalised over the data's classes."""
    mapping = label_mapping(data_labels, model_labels)
    missing = [n for i, n in enumerate(data_labels) if i not in mapping]
    if missing:
        raise ValueError(f"run {name} cannot predict the data's labels {missing} (its labels: {model_labels})")
    out = probs[:, [mapping[i] for i in range(len(data_labels))]]
    return out / out.sum(1, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def collect(models: dict[str, EmotionModule], loader, data_labels: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-model probabilities ``[M, N, K]`` and labels ``[N]`` over one loader."""
    probs: dict[str, list[torch.Tensor]] = {n: [] for n in models}
    labels = []
    for batch in loader:
        for name, model in models.items():
            p = model(batch).float().softmax(-1)
            probs[name].append(to_data_order(p, model.label_names, data_labels, name))
        labels.append(batch["label"])
    return torch.stack([torch.cat(v) for v in probs.values()]), torch.cat(labels)


def score(probs: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[dict[str, float], list]:
    metrics, per_class = build_metrics(k), build_per_class(k)
    preds = probs.argmax(-1)
    metrics.update(preds, labels)
    per_class.update(preds, labels)
    return {k_: float(v) for k_, v in metrics.compute().items()}, per_class.compute()["confmat"].tolist()


def ensemble(cfg: DictConfig) -> dict[str, Any]:
    L.seed_everything(cfg.seed, workers=True)
    out_dir = Path(cfg.paths.output_dir)
    ckpts = [resolve_run(str(r)) for r in cfg.runs]
    if len(ckpts) < 2:
        raise ValueError(f"runs= lists {len(ckpts)} run; an ensemble needs at least two")
    models = {}
    for c in ckpts:
        name = run_name(c)
        name = name if name not in models else f"{name}_{len(models)}"
        models[name] = EmotionModule.load_from_checkpoint(c, map_location="cpu").eval()
    dm = eval_datamodule(cfg, list(models.values()), ckpts[0])
    dm.setup("test")
    labels = dm.label_names
    loaders = {"val": dm.val_dataloader(), "test": dm.test_dataloader()}
    if dm.splits["test"] is dm.splits["val"] and cfg.method != "mean":
        log.warning("the data's test split is its validation split: %s is fitted and scored on the same "
                    "samples, so its figures are optimistic", cfg.method)
    (val_p, val_y), (test_p, test_y) = (collect(models, loaders[s], labels) for s in ("val", "test"))
    probs, fitted = combine(cfg.method, val_p, val_y, test_p)
    k = len(labels)
    metrics, confmat = score(probs, test_y, k)
    per_model = {n: score(test_p[i], test_y, k)[0] for i, n in enumerate(models)}
    summary = {"method": cfg.method, "runs": [str(c) for c in ckpts], "test": metrics,
               "test_models": per_model, "fitted": fitted, "label_names": labels,
               "data_sizes": {s: len(dm.splits[s]) for s in ("val", "test")}, "data": to_plain(cfg.get("data"))}
    write_json(out_dir / "metrics.json", summary)
    save_confusion_matrix(confmat, labels, out_dir, f"ensemble ({cfg.method})")
    keys = ["acc", "uar", "f1_macro", "f1_weighted"]
    with open(out_dir / "ensemble.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", *keys])
        for name, m in [*per_model.items(), (f"ensemble:{cfg.method}", metrics)]:
            w.writerow([name, *[f"{m[k_]:.6f}" for k_ in keys]])
    for name, m in per_model.items():
        print(f"{name:>40}: UAR {100 * m['uar']:.2f}  acc {100 * m['acc']:.2f}")
    print("\n" + metrics_table(metrics, f"ensemble ({cfg.method}) of {len(models)} runs, test metrics (%)"))
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="ensemble")
def main(cfg: DictConfig) -> None:
    offline_defaults()
    ensemble(cfg)


if __name__ == "__main__":
    main()
