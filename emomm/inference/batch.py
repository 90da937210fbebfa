"""Predicting many files (what ``python -m emomm.predict`` runs).

:func:`expand_inputs` turns files, folders and globs into a file list; :func:`media_kind`
decides image / video / audio / text: a ``.txt`` is text whatever its first bytes, anything
else by its bytes (:mod:`emomm.media.sniff`, the web app's sniffer; the name only breaks
ties); :func:`predict_file` returns one JSON-ready record, with ``error`` instead of a result
when the file is unreadable, of a modality the model lacks, an image without a face or a
recording without speech: whatever goes wrong with one file, the others are still predicted.
"""
from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

from emomm.data.pipelines.text_data import read_text_file
from emomm.inference.predictor import Predictor
from emomm.inference.results import top
from emomm.media.audio import AUDIO_EXTENSIONS
from emomm.media.files import walk_files
from emomm.media.images import IMAGE_EXTENSIONS
from emomm.media.sniff import sniff
from emomm.media.video import VIDEO_EXTENSIONS
from emomm.utils.atomic import atomic_savefig

log = logging.getLogger(__name__)

TEXT_EXTENSIONS = (".txt",)
KNOWN = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS + AUDIO_EXTENSIONS + TEXT_EXTENSIONS
#: A ``.txt`` is one utterance: longer files are refused before they are read.
MAX_TEXT_BYTES = 1_000_000


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


def suffix_kind(path: Path) -> str | None:
    """``image`` | ``video`` | ``audio`` | ``text`` by the file's suffix, or None."""
    suffix = path.suffix.lower()
    for kind, exts in (("image", IMAGE_EXTENSIONS), ("video", VIDEO_EXTENSIONS), ("audio", AUDIO_EXTENSIONS),
                       ("text", TEXT_EXTENSIONS)):
        if suffix in exts:
            return kind
    return None


def media_kind(path: Path) -> str:
    """``image`` | ``video`` | ``audio`` | ``text``: a ``.txt`` is text (a note may start with
    ``RIFF`` or ``BM``); any other file is what its first bytes say (a PNG named ``.wav`` is
    an image), and its suffix decides when they say nothing."""
    by_name = suffix_kind(path)
    if by_name == "text":
        return "text"
    with open(path, "rb") as f:
        found = sniff(f.read(256))
    if found is not None:
        return found.kind
    if by_name is None:
        raise ValueError(f"{path}: not a known image, video, audio or .txt file (suffix {path.suffix!r})")
    return by_name


def read_text_input(path: Path) -> tuple[str, str | None]:
    """The text of a ``.txt`` input (UTF-8, UTF-16/32 by BOM, cp1252 bytes read as such) and
    a note when cp1252 bytes were found; a ``ValueError`` naming the file when it is too long,
    empty or no text."""
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise ValueError(f"{path}: {size:,} bytes is too long for one utterance (at most {MAX_TEXT_BYTES:,}); "
                         "split it into files of one utterance each")
    text, n_cp1252 = read_text_file(path)
    if not text.strip():
        raise ValueError(f"{path}: the file holds no text; write an utterance in it or delete it")
    return text.strip(), f"{n_cp1252} bytes were not UTF-8 and were read as cp1252" if n_cp1252 else None


def predict_file(predictor: Predictor, path: Path) -> dict[str, Any]:
    """One JSON-ready record: ``{"input", "kind", ...result}`` or ``{"input", "error"}``.

    Never raises for one file: decoding errors (ValueErrors naming the file), OS errors and
    anything unexpected become the record's ``error``, logged in one line naming the file.
    """
    record: dict[str, Any] = {"input": str(path)}
    kind = None
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
            text, note = read_text_input(path)
            result = predictor.predict_text(text)
            if note:
                record["note"] = note
                log.warning("%s: %s", path, note)
        record.update(result.to_dict())
        record.pop("source", None)
    except (ValueError, OSError, RuntimeError) as err:  # media errors are ValueErrors naming the file
        record["error"] = _with_kind_hint(str(err), path, kind)
    except Exception as err:  # one odd file must not end the run without its summary
        log.debug("%s", path, exc_info=True)
        record["error"] = f"{path}: {type(err).__name__}: {err} (unexpected: please report it)"
    if record.get("error"):
        err = record["error"]
        log.warning("%s", err if str(path) in err else f"{path}: {err}")
    return record


def _with_kind_hint(error: str, path: Path, kind: str | None) -> str:
    """``error``, plus a word when the bytes and the suffix disagree (a ``.wav`` holding a PNG)."""
    by_name = suffix_kind(path)
    if kind is None or by_name is None or kind == by_name:
        return error
    return f"{error} (its bytes are {kind} but its suffix {path.suffix} says {by_name})"


#: Columns of ``summary.csv``, before the :func:`stream_fields`.
SUMMARY_FIELDS = ["input", "kind", "label", "confidence", "faces", "error"]


def stream_fields(streams: Sequence[str]) -> list[str]:
    """The CSV columns of each stream's own prediction beside the fused one, ``<stream>_label``
    and ``<stream>_confidence`` (``face_label``, ``landmarks_label``...: the keys of the
    JSONL's ``modality_probs``); none for a model of one stream."""
    return [f"{m}_{k}" for m in streams for k in ("label", "confidence")] if len(streams) > 1 else []


def stream_cells(views: dict[str, Any] | None, label_names: Sequence[str], streams: Sequence[str]) -> dict[str, Any]:
    """The :func:`stream_fields` cells of one face, clip or person from its ``modality_probs``
    (empty for a stream it lacks, e.g. a face without a mesh)."""
    out: dict[str, Any] = dict.fromkeys(stream_fields(streams))
    for m, probs in (views or {}).items():
        if f"{m}_label" in out:
            label, conf = top(probs, list(label_names))
            out.update({f"{m}_label": label, f"{m}_confidence": round(float(conf), 4)})
    return out


def summary_row(record: dict[str, Any], streams: Sequence[str] = ()) -> dict[str, Any]:
    """The CSV line of a record: input, kind, label, confidence, faces (of an image: found; of a
    video: tracked), error, and with several ``streams`` (:func:`stream_fields`) each stream's
    own label and confidence of the same face (the most confident) or clip."""
    label, conf, faces, views = record.get("label"), None, None, record.get("modality_probs")
    if record.get("kind") == "video" and not record.get("error"):
        faces = len(record.get("tracks") or {}) or None   # people tracked in the clip
    if "faces" in record:
        faces, views = len(record["faces"]), None
        if faces:
            best = max(record["faces"], key=lambda f: f["confidence"])
            label, conf, views = best["label"], best["confidence"], best.get("modality_probs")
    elif record.get("probs"):
        conf = max(record["probs"])
    return {"input": record["input"], "kind": record.get("kind"), "label": label,
            "confidence": None if conf is None else round(float(conf), 4), "faces": faces,
            "error": record.get("error"), **stream_cells(views, record.get("label_names") or [], streams)}


#: Columns of ``people.csv``: one row per person tracked in a video (the fields of
#: :class:`~emomm.inference.results.PersonResult`, under the same names as in the JSONL), before
#: the :func:`stream_fields`.
PERSON_FIELDS = ["input", "id", "start", "end", "frames", "n_windows", "label", "confidence", "thumb_t", "thumb_box"]


def person_rows(record: dict[str, Any], streams: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The ``people.csv`` lines of a record: one per tracked person of a video (none for
    other inputs or a failed one); times in seconds, ``thumb_box`` as ``x1 y1 x2 y2``; with
    several ``streams``, each stream's own label and confidence of that person."""
    rows = []
    for p in record.get("people") or []:
        row = {k: p.get(k) for k in PERSON_FIELDS[1:]}
        row.update(input=record["input"], start=round(float(p["start"]), 3), end=round(float(p["end"]), 3),
                   thumb_t=round(float(p["thumb_t"]), 3), confidence=round(float(p["confidence"]), 4),
                   thumb_box=" ".join(f"{float(v):.1f}" for v in p["thumb_box"]),
                   **stream_cells(p.get("modality_probs"), record.get("label_names") or [], streams))
        rows.append(row)
    return rows


def plot_timeline(record: dict[str, Any], out_png: Path, max_rows: int = 6) -> None:
    """Emotion-over-time chart of a video/audio record: one panel per tracked face (the first
    ``max_rows``), else one for the clip's windows; one line per class, with markers when
    there are few windows (a one-window clip is a row of dots, not an empty chart)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tracks = record.get("tracks") or {}
    panels = [(f"face {tid}", ws) for tid, ws in tracks.items() if ws] or [(None, record.get("windows") or [])]
    panels = [(name, ws) for name, ws in panels if ws][:max_rows]
    if not panels:
        return
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.2 + 1.8 * len(panels)), sharex=True, squeeze=False)
    for ax, (name, windows) in zip(axes[:, 0], panels):
        t = [(w["start"] + w["end"]) / 2 for w in windows]
        probs = np.array([w["probs"] for w in windows])
        for k, label in enumerate(record["label_names"]):
            ax.plot(t, probs[:, k], label=label, marker="o" if len(windows) <= 30 else None, markersize=3)
        ax.set_ylabel("probability" if name is None else f"{name}\nprobability", fontsize=8)
        ax.set_ylim(0, 1)
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 0].set_xlim(0, max(float(record.get("duration") or 0), max(w["end"] for _, ws in panels for w in ws)))
    more = f" (first {max_rows} of {len(tracks)} faces)" if len(tracks) > max_rows else ""
    axes[0, 0].set_title(f"{Path(record['input']).name}: {record.get('label')}{more}")
    axes[0, 0].legend(fontsize=7, ncol=4, loc="upper right")
    fig.tight_layout()
    atomic_savefig(fig, out_png, dpi=100)
    plt.close(fig)
