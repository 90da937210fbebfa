"""Check a dataset before training: ``python -m emomm.validate data=... [decode=header]``.

Thin entry point over :mod:`emomm.data.health`: builds the DataModule from the same
config as training, writes ``validate.json`` and ``validate.md``, prints the Markdown and
exits 1 when a split is unusable (the report's ``problems``).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from emomm.data.health import to_markdown, validate_datamodule
from emomm.utils.artifacts import write_json
from emomm.utils.atomic import atomic_write_text
from emomm.utils.runtime import CONFIG_DIR, offline_defaults

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    if not cfg.get("data"):
        raise SystemExit("give the dataset to check: python -m emomm.validate data=<fer2013|ravdess|meld|...> "
                         "data.root=PATH")
    datamodule = instantiate(cfg.data)
    report = validate_datamodule(datamodule, decode=cfg.decode, max_list=int(cfg.max_list),
                                 duplicates=bool(cfg.duplicates))
    out = Path(cfg.out or cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "validate.json", report)
    md = to_markdown(report)
    atomic_write_text(out / "validate.md", md)
    print(md)
    print(f"report: {out / 'validate.json'}")
    return report


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="validate")
def main(cfg: DictConfig) -> None:
    offline_defaults()
    report = run(cfg)
    if not report["usable"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
