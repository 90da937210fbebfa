"""``python -m emomm.personalize ckpt_path=PATH person=ID shots=K [method=...] [protocol=...] [data=...]``.

Fits a per-person adapter (see :mod:`emomm.personalize`) on K samples per class of one
person, prints UAR on that person's other samples before and after, and writes the adapter
file (``adapter_<person>_<method>_k<K>.pt``, or ``out=``) and ``personalize.json`` into the
run folder. Use the adapter with ``Predictor.from_checkpoint(ckpt, adapter=path)`` or
``python -m emomm.predict ... predictor.adapter=path``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig

from emomm.models.module import EmotionModule
from emomm.personalize import personalize
from emomm.runs.evaluation import eval_datamodule
from emomm.utils.artifacts import write_json
from emomm.utils.runtime import CONFIG_DIR, offline_defaults, resolve_ckpt, to_plain
from emomm.utils.safe_load import exit_on_checkpoint_error

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    L.seed_everything(cfg.seed, workers=True)
    out_dir = Path(cfg.paths.output_dir)
    ckpt = resolve_ckpt(cfg.ckpt_path, cfg.paths.log_dir)
    module = EmotionModule.load_from_checkpoint(ckpt, map_location="cpu")
    datamodule = eval_datamodule(cfg, [module], ckpt)
    adapter, summary = personalize(module, datamodule, cfg.person, int(cfg.shots), cfg.method, cfg.protocol,
                                   ckpt, int(cfg.batch_size), **to_plain(cfg.fit))
    path = Path(cfg.out) if cfg.get("out") else out_dir / f"adapter_{cfg.person}_{cfg.method}_k{cfg.shots}.pt"
    adapter.save(path)
    summary |= {"ckpt_path": str(ckpt), "adapter": str(path)}
    write_json(out_dir / "personalize.json", summary)
    if "uar_before" in summary:
        print(f"person {cfg.person}, {cfg.method}, {cfg.shots} shot(s)/class ({summary['n_adapt']} samples), "
              f"scored on {summary['n_eval']} others: UAR {100 * summary['uar_before']:.2f} -> "
              f"{100 * summary['uar_after']:.2f}, acc {100 * summary['acc_before']:.2f} -> {100 * summary['acc_after']:.2f}")
    print(f"adapter: {path}")
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="personalize")
def main(cfg: DictConfig) -> None:
    offline_defaults()
    with exit_on_checkpoint_error():
        run(cfg)


if __name__ == "__main__":
    main()
