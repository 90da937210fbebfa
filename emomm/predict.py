"""Predict files: ``python -m emomm.predict ckpt_path=... inputs=[a.jpg,videos/,'*.wav']``
(console script ``emomm-predict``).

Writes ``predictions.jsonl`` (one line per input), ``summary.csv`` (one line per input) and
``people.csv`` (one line per person tracked in a video) to the run folder (``out=`` moves the
JSONL; a model of several streams, e.g. ``[face, landmarks]`` or a pixel + landmark ensemble,
adds each stream's own label and confidence: :func:`~emomm.inference.batch.stream_fields`),
``timeline_png=true`` draws each video/audio timeline and ``annotate=true`` writes each
video with its people drawn on it (``<name>_annotated.mp4``).
Exit code 1 when any input failed (its line says why); the others are still predicted.
"""
from __future__ import annotations

import csv
import json
import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from emomm.faces.mesh import MeshModelMissing
from emomm.inference.batch import (PERSON_FIELDS, SUMMARY_FIELDS, expand_inputs, person_rows, plot_timeline,
                                   predict_file, stream_fields, summary_row)
from emomm.inference.bundle import load_predictor
from emomm.runs.annotated_video import write_annotated_video
from emomm.utils.atomic import atomic_open
from emomm.utils.runtime import CONFIG_DIR, offline_defaults, resolve_ckpts, to_plain
from emomm.utils.safe_load import exit_on_checkpoint_error

log = logging.getLogger(__name__)


def predict(cfg: DictConfig) -> int:
    """Run the predictions; returns the number of inputs that failed."""
    out_dir = Path(cfg.paths.output_dir)
    ckpt = resolve_ckpts(cfg.ckpt_path, cfg.paths.log_dir, cfg.backend)
    options = to_plain(cfg.predictor) or {}
    if cfg.backend == "onnxruntime":
        options["precision"] = cfg.precision
    predictor = load_predictor(ckpt, device=cfg.device, backend=cfg.backend, **options)   # zoo:face-voice too
    inputs = to_plain(cfg.inputs)
    files = expand_inputs([inputs] if isinstance(inputs, str) else inputs)
    jsonl = Path(cfg.out) if cfg.get("out") else out_dir / "predictions.jsonl"
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    rows, people, failed = [], [], 0
    streams = predictor.modalities   # several: each one's own label beside the fused one
    try:
        # Streamed line by line (a fresh run folder each time): an interrupted run keeps the
        # lines written so far, as live mode's JSONL does.
        with open(jsonl, "w") as f:
            for path in files:
                record = predict_file(predictor, path)   # never raises: a bad file is its error line
                failed += bool(record.get("error"))
                f.write(json.dumps(record) + "\n")
                f.flush()
                rows.append(summary_row(record, streams))
                people += person_rows(record, streams)
                if cfg.timeline_png and record.get("windows"):
                    plot_timeline(record, out_dir / f"{path.stem}_timeline.png")
                if cfg.get("annotate") and record.get("kind") == "video" and "label_names" in record:
                    annotated(record, path, out_dir / f"{path.stem}_annotated.mp4", options.get("max_pixels"))
    finally:  # interrupted (Ctrl-C, a full disk): the summary still lists what was predicted
        with atomic_open(out_dir / "summary.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS + stream_fields(streams))
            w.writeheader()
            w.writerows(rows)
        with atomic_open(out_dir / "people.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=PERSON_FIELDS + stream_fields(streams))
            w.writeheader()
            w.writerows(people)
    print(f"{len(files)} inputs, {failed} failed -> {jsonl}, {out_dir / 'summary.csv'} and {out_dir / 'people.csv'}")
    return failed


def annotated(record: dict, path: Path, out: Path, max_pixels: int | None) -> None:
    """Write ``out`` (one bad video only logs why: its predictions are already written)."""
    try:
        info = write_annotated_video(record, path, out, max_pixels)
    except (ValueError, OSError) as err:
        log.warning("%s: no annotated video (%s)", path, err)
        return
    log.info("%s: annotated video %s (%s%s)", path, info["path"], info["codec"], ", audio" if info["audio"] else "")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    offline_defaults()
    with exit_on_checkpoint_error(MeshModelMissing):
        failed = predict(cfg)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
