"""People counted per video, end to end, against ground truth (issue 42).

    python -m benchmarks.people_footage [--scenes street,crossing,linear] [--sizes 1920x1080,640x480]
        [--fps 5,10] [--video-fps 10] [--seconds 4] [--min-frames 1,2,3,4] [--ckpt zoo:face-fer2013]

Each scene of :mod:`benchmarks.footage` (real FER2013 / CREMA-D faces pasted on known paths) is
written as a video at ``--video-fps`` and predicted by ``Predictor.predict_video`` (the
checkpoint's defaults: MTCNN and the Kalman tracker) at each sampling rate ``--fps``, with
``min_person_frames=1`` (every track a person, the behaviour before it existed). Each person's
sightings (``PersonResult.boxes``) are matched to the ground truth of that frame (IoU >= 0.5,
:func:`benchmarks.footage.match_boxes`); a person is the true person most of its sightings
match, or *spurious* when none does. Since leaving brief tracks out changes no other track,
each ``min_person_frames`` value ``k`` is scored on the same run: the people with at least ``k``
sighted frames. Per setting and ``k``: ``found`` (people reported), ``true`` (people at least half
visible in a sampled frame), ``spurious`` (matching nobody), ``duplicates`` (a second person for
someone already found: a broken track), ``missed`` (true people no reported person matches).

Drawing (``drawn``): every frame of the video is drawn as predict's annotated video draws it
(:func:`emomm.inference.people.faces_at`, the people kept by the default ``min_person_frames``),
once from the sightings and once from the windows' mean boxes (the drawing before sightings
were kept); per way, the boxes drawn, their median IoU with the true face and the share on no
face (IoU < 0.3 with every true box). Writes ``benchmarks/results/<name>.json``.
"""
from __future__ import annotations

import argparse
import inspect
import os
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from benchmarks.common import DATA_DIR, write_result  # noqa: E402
from benchmarks.footage import (CAVEATS, Box, iou_matrix, load_gt, load_sources, make_scene,  # noqa: E402
                               match_boxes, parse_size, write_clip)
from emomm.inference.people import faces_at, people_of  # noqa: E402
from emomm.inference.predictor import Predictor  # noqa: E402
from emomm.utils.runtime import resolve_ckpts  # noqa: E402

MIN_VISIBLE = 0.5
DEFAULT_MIN_FRAMES = inspect.signature(Predictor).parameters["min_person_frames"].default


def true_person(boxes: list[list[float]], gt: list[list[Box]], video_fps: float) -> int | None:
    """The ground-truth id most of a person's sightings ``[[t, x1, y1, x2, y2], ...]`` match, or None."""
    votes: Counter = Counter()
    for t, *box in boxes:
        frame = gt[min(int(round(t * video_fps)), len(gt) - 1)]
        truth = np.stack([b.xyxy for b in frame]) if frame else np.zeros((0, 4), np.float32)
        for g, _ in match_boxes(truth, np.asarray([box], np.float32)):
            votes[frame[g].id] += 1
    return votes.most_common(1)[0][0] if votes else None


def count(people: list[tuple[int, int | None]], truth: set[int], k: int, n_sampled: int) -> dict:
    """``people``: ``(frames, true id or None)`` per reported person -> the counts with
    ``min_person_frames=k`` (see the module docstring)."""
    kept = [p for f, p in people if f >= min(k, n_sampled)]
    matched = [p for p in kept if p is not None]
    return {"found": len(kept), "true": len(truth), "spurious": len(kept) - len(matched),
            "duplicates": len(matched) - len(set(matched)), "missed": len(truth - set(matched)),
            "brief_tracks": len(people) - len(kept)}


def drawn(record: dict, gt: list[list[Box]], video_fps: float) -> dict:
    """The boxes drawn on every frame vs the true faces, from the sightings and from the
    windows' mean boxes (see the module docstring)."""
    out = {}
    for way in ("sightings", "window_means"):
        r = {**record, "people": [{k: v for k, v in p.items() if way == "sightings" or k != "boxes"}
                                  for p in record["people"]]}
        people, ious = people_of(r), []
        for i, frame in enumerate(gt):
            truth = np.stack([b.xyxy for b in frame]) if frame else np.zeros((0, 4), np.float32)
            for f in faces_at(people, i / video_fps):
                ious.append(float(iou_matrix(np.asarray([f["box"]]), truth).max()) if len(truth) else 0.0)
        out[way] = {"boxes": len(ious), "median_iou": round(float(np.median(ious)), 3) if ious else None,
                    "on_no_face": round(float(np.mean(np.asarray(ious) < 0.3)), 3) if ious else None}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.people_footage", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", default="street,crossing,linear")
    ap.add_argument("--sizes", default="1920x1080,640x480")
    ap.add_argument("--fps", default="5,10", help="the Predictor's sampling rates")
    ap.add_argument("--video-fps", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--min-frames", default="1,2,3,4")
    ap.add_argument("--ckpt", default="zoo:face-fer2013")
    ap.add_argument("--faces", default="cremad,fer")
    ap.add_argument("--data-root", default=str(DATA_DIR))
    ap.add_argument("--name", default="people_footage")
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile (recorded)")
    a = ap.parse_args(argv)
    ks = [int(k) for k in a.min_frames.split(",")]
    sources = load_sources(a.faces.split(","), a.data_root)
    t_start, load_start = time.time(), os.getloadavg()
    ckpt = resolve_ckpts(a.ckpt, "logs")
    results, totals = {}, {k: Counter() for k in ks}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in a.scenes.split(","):
            for w, h in (parse_size(s) for s in a.sizes.split(",")):
                scene = make_scene(kind, w, h, sources, seed=0, seconds=a.seconds)
                video, _ = write_clip(Path(tmp) / f"{kind}_{w}x{h}.mp4", scene, a.video_fps)
                gt = load_gt(video)[1]
                for fps in (float(f) for f in a.fps.split(",")):
                    predictor = Predictor.from_checkpoint(ckpt, fps=fps, min_person_frames=1)
                    t0 = time.perf_counter()
                    res = predictor.predict_video(video)
                    seconds = time.perf_counter() - t0
                    sampled = [i for i in range(len(gt)) if any(abs(i / a.video_fps - t) < 1e-6 for t in
                                                                np.arange(0, a.seconds, 1 / fps))]
                    truth = {b.id for i in sampled for b in gt[i] if b.visible >= MIN_VISIBLE}
                    people = [(p.frames, true_person(p.boxes, gt, a.video_fps)) for p in res.people]
                    record = res.to_dict()
                    keep = {p.id for p in res.people if p.frames >= min(DEFAULT_MIN_FRAMES, len(sampled))}
                    record["people"] = [p for p in record["people"] if p["id"] in keep]
                    record["tracks"] = {k: v for k, v in record["tracks"].items() if int(k) in keep}
                    key = f"{kind} {w}x{h} {fps:g}fps"
                    results[key] = {"person_frames": sorted((f for f, _ in people), reverse=True),
                                    "predict_s": round(seconds, 1), "drawn": drawn(record, gt, a.video_fps),
                                    **{f"min_person_frames={k}": count(people, truth, k, len(sampled)) for k in ks}}
                    for k in ks:
                        totals[k].update(results[key][f"min_person_frames={k}"])
                    print(key, results[key], flush=True)
    write_result(a.name, {
        "command": shlex.join(["python", "-m", "benchmarks.people_footage", *(sys.argv[1:] if argv is None else argv)]),
        "load_avg_start": [round(x, 2) for x in load_start], "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "ckpt": a.ckpt, "video_fps": a.video_fps, "seconds": a.seconds, "min_visible": MIN_VISIBLE,
        "totals": {f"min_person_frames={k}": dict(v) for k, v in totals.items()},
        "results": results, "caveats": CAVEATS, "wall_time_s": round(time.time() - t_start, 1), "note": a.note})


if __name__ == "__main__":
    main()
