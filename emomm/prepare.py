"""Compute the face crops of a whole dataset once: ``python -m emomm.prepare data=... [data.root=...]``.

Every file of the dataset (all splits) is decoded, its faces detected and cropped by the
``faces`` settings, and the crops written to the cache that training reads (see
:mod:`emomm.faces.cache`). Runs one process per available core (``workers=N`` to change),
shows a progress bar with ETA, and ends with a report: files, frames, faces found, files
with no face, unreadable files, time; also written to ``<run dir>/prepare_report.json``.
Interrupting it keeps every finished entry: run it again to do the rest. Training with
the same data / modality / faces / video.sampling settings then finds every crop cached.

``clear=true`` deletes instead: every cached crop of this dataset's files, whatever crop
settings made it (nothing is computed); ``clear=all`` deletes the whole cache folder
(``faces.cache_dir``, by default ``.cache/faces``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from emomm.faces.cache import read_meta
from emomm.faces.crop_store import format_report
from emomm.utils.artifacts import write_json
from emomm.utils.runtime import CONFIG_DIR, offline_defaults

log = logging.getLogger(__name__)


def clear_cache(cache_root: Path, sources: list[Path] | None) -> dict[str, Any]:
    """Delete the cache entries made from ``sources`` (any crop settings), or every entry
    when ``sources`` is None. Returns ``{"deleted": n, "cache_dir": ...}``."""
    cache_root = Path(cache_root).expanduser()
    deleted = 0
    if cache_root.is_dir():
        wanted = None if sources is None else {str(Path(s).resolve()) for s in sources}
        for entry in sorted(cache_root.glob("*/*.npz")) + sorted(cache_root.glob("*/.*.tmp")):
            if wanted is not None:
                try:
                    if read_meta(entry).get("source") not in wanted:
                        continue
                except Exception:  # an unreadable entry cannot be attributed; leave it
                    continue
            entry.unlink(missing_ok=True)
            deleted += 1
        for d in sorted(cache_root.glob("*")):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        if sources is None and not any(cache_root.iterdir()):
            cache_root.rmdir()
    log.info("deleted %d face-crop cache entries under %s", deleted, cache_root)
    return {"deleted": deleted, "cache_dir": str(cache_root)}


def prepare(cfg: DictConfig) -> dict[str, Any]:
    clear = cfg.get("clear", False)
    if clear not in (False, True, "all", None):
        raise ValueError(f"clear={clear!r}: use clear=true (this dataset's crops) or clear=all (the whole cache)")
    if clear == "all":
        report = clear_cache(Path(cfg.faces.cache_dir), None)
        print(f"deleted {report['deleted']} cached face crops: {report['cache_dir']}")
        return report
    datamodule = instantiate(cfg.data)
    if not hasattr(datamodule, "crop_sources"):
        raise ValueError(f"data={type(datamodule).__name__} has no face crops to prepare: use a video or "
                         "face-photo dataset (ravdess_video, cremad_video, video_folder, face_photos); "
                         "data=synthetic builds its clips and crops on first use")
    sources = datamodule.crop_sources()
    log.info("%d files in %s", len(sources), getattr(datamodule, "root", "?"))
    if clear:
        report = clear_cache(datamodule.store.cache.root, sources)
        print(f"deleted {report['deleted']} cached face crops of {len(sources)} files: {report['cache_dir']}")
        return report
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
