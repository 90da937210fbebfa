"""Predict's annotated video (``annotate=true``): the input at its own frame rate with each
person's box, ID, label and top classes (live mode's overlay, scaled to the frame, labels
never overlapping), H.264 where FFmpeg has it, with the input's audio track muxed in."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from emomm.inference.people import faces_at, people_of
from emomm.live.overlay import draw
from emomm.media.video import VideoWriter, iter_frames, probe, source_audio

log = logging.getLogger(__name__)


def write_annotated_video(record: dict[str, Any], src: str | Path, out: str | Path,
                          max_pixels: int | None = None) -> dict[str, Any]:
    """Draw a video ``record`` (predict's JSON line) over every frame of ``src`` into the MP4
    ``out``; returns ``{"path", "codec", "audio", "note"}`` (``note``: why there is no H.264 or
    no audio, else None)."""
    people = people_of(record)
    labels = list(record.get("label_names") or [])
    wave, rate, no_audio = source_audio(src)
    writer = VideoWriter(out, probe(src).fps or 25.0, audio=wave, audio_rate=rate)
    with writer:
        for t, rgb in iter_frames(src, max_pixels):
            writer.write(draw(rgb, faces_at(people, t), labels, None))
        path = writer.close()
    notes = [n for n in (writer.note, no_audio and f"no audio track muxed in ({no_audio})") if n]
    for n in notes:
        log.warning("%s: %s", out, n)
    return {"path": str(path) if path else None, "codec": writer.codec, "audio": wave is not None,
            "note": "; ".join(notes) or None}
