"""Predicting many files (what ``python -m emomm.predict`` runs).

:func:`expand_inputs` turns files, folders and globs into a file list; :func:`media_kind`
decides image / video / audio / text from the file's first bytes (the name only breaks ties);
:func:`predict_file` returns one JSON-ready record, with ``error`` instead of a result when
the file is unreadable, of a modality the model lacks, or an image without a face.
"""
from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import Any, Iterable

from emomm.inference.predictor import Predictor
from emomm.media.audio import AUDIO_EXTENSIONS
from emomm.media.files import walk_files
from emomm.media.images import IMAGE_EXTENSIONS
from emomm.media.video import VIDEO_EXTENSIONS
from emomm.utils.atomic import atomic_savefig

log = logging.getLogger(__name__)

TEXT_EXTENSIONS = (".txt",)
KNOWN = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS + AUDIO_EXTENSIONS + TEXT_EXTENSIONS


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Files as given; folders walked (files with known media suffixes); globs expanded.
    A pattern that matches nothing is kept, so it gets its own error line."""
    out: list[Path] = []
    for item in inputs:
        p = Path(str(item)).expanduser()
        if p.is_dir():
            out += walk_files(p, KNOWN)
        elif any(c in str(item) for c in "*?["):
            found = sorted(Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
            out += found or [p]
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def media_kind(path: Path) -> str:
    """``image`` | ``video`` | ``audio`` | ``text``, from magic bytes first."""
    head = path.read_bytes()[:64] if path.is_file() else b""
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE" or head.startswith((b"fLaC", b"ID3", b"OggS")) \
            or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio"
    if head[4:8] == b"ftyp":  # MP4 family: M4A is audio, the rest video
        return "audio" if head[8:12] in (b"M4A ", b"M4B ") else "video"
    if head.startswith((b"FLV", b"\x1aE\xdf\xa3")) or (head[:4] == b"RIFF" and head[8:12] == b"AVI "):
        return "video"
    suffix = path.suffix.lower()
    for kind, exts in (("image", IMAGE_EXTENSIONS), ("video", VIDEO_EXTENSIONS), ("audio", AUDIO_EXTENSIONS),
                       ("text", TEXT_EXTENSIONS)):
        if suffix in exts:
            return kind
    raise ValueError(f"{path}: not a known image, video, audio or .txt file (suffix {suffix!r})")


def predict_file(predictor: Predictor, path: Path) -> dict[str, Any]:
    """One JSON-ready record: ``{"input", "kind", ...result}`` or ``{"input", "error"}``."""
    record: dict[str, Any] = {"input": str(path)}
    try:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        kind = media_kind(path)
        record["kind"] = kind
        if kind == "image":
            result = predictor.predict_image(path)
        elif kind == "video":
            result = predictor.predict_video(path)
        elif kind == "audio":
            result = predictor.predict_audio(path)
        else:
            text = path.read_text(encoding="utf-8", errors="replace").strip()
            result = predictor.predict_text(text)
        record.update(result.to_dict())
        record.pop("source", None)
    except (ValueError, OSError, RuntimeError) as err:  # media errors are ValueErrors naming the file
        record["error"] = str(err)
    if record.get("error"):
        log.warning("%s", record["error"])
    return record


def summary_row(record: dict[str, Any]) -> dict[str, Any]:
    """The CSV line of a record: input, kind, label, confidence, faces, error."""
    label, conf, faces = record.get("label"), None, None
    if "faces" in record:
        faces = len(record["faces"])
        if faces:
            best = max(record["faces"], key=lambda f: f["confidence"])
            label, conf = best["label"], best["confidence"]
    elif record.get("probs"):
        conf = max(record["probs"])
    return {"input": record["input"], "kind": record.get("kind"), "label": label,
            "confidence": None if conf is None else round(float(conf), 4), "faces": faces,
            "error": record.get("error")}


def plot_timeline(record: dict[str, Any], out_png: Path) -> None:
    """Emotion-over-time chart of a video/audio record (one line per class)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    windows = record.get("windows") or []
    if not windows:
        return
    t = [(w["start"] + w["end"]) / 2 for w in windows]
    probs = np.array([w["probs"] for w in windows])
    fig, ax = plt.subplots(figsize=(8, 3))
    for k, name in enumerate(record["label_names"]):
        ax.plot(t, probs[:, k], label=name)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_title(f"{Path(record['input']).name}: {record.get('label')}")
    ax.legend(fontsize=7, ncol=4, loc="upper right")
    fig.tight_layout()
    atomic_savefig(fig, out_png, dpi=100)
    plt.close(fig)
