"""Compute the face crops of a whole dataset once: ``python -m emomm.prepare data=... [data.root=...]``.

Every file of the dataset (all splits) is decoded, its faces detected and cropped by the
``faces`` settings, and the crops written to the cache that training reads (see
:mod:`emomm.faces.cache`). Runs one process per available core (``workers=N`` to change),
shows a progress bar with ETA, and ends with a report: files, frames, faces found, files
with no face, unreadable files, time; also written to ``<run dir>/prepare_report.json``.
Interrupting it keeps every finished entry: run it again to do the rest. Training with
the same data / modality / faces / video.sampling settings then finds every crop cached.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from emomm.faces.pipeline import format_report
from emomm.utils.artifacts import write_json
from emomm.utils.runtime import offline_defaults

try:
    from emomm.utils.runtime import CONFIG_DIR
except ImportError:  # pragma: no cover - older checkouts
    CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")

log = logging.getLogger(__name__)


def prepare(cfg: DictConfig) -> dict[str, Any]:
    datamodule = instantiate(cfg.data)
    if not hasattr(datamodule, "crop_sources"):
        raise ValueError(f"data={type(datamodule).__name__} has no face crops to prepare: use a video or "
                         "face-photo dataset (ravdess_video, cremad_video, video_folder, face_photos); "
                         "data=synthetic builds its clips and crops on first use")
    sources = datamodule.crop_sources()
    log.info("%d files in %s", len(sources), getattr(datamodule, "root", "?"))
    report = datamodule.store.prepare(sources, workers=cfg.get("workers"))
    text = format_report(report)
    print(text)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "prepare_report.json", report)
    return report


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="prepare")
def main(cfg: DictConfig) -> None:
    offline_defaults()
    prepare(cfg)


if __name__ == "__main__":
    main()
