"""Face detection at any frame size on composed real-face footage (issue 42).

Still frames of :mod:`benchmarks.footage` (real CREMA-D and FER2013 faces pasted at known
boxes, sizes 20-400 px, on a textured background; 1920x1080 and 640x480) go through each
detector and setting; a detection matches a ground-truth face at IoU >= 0.5 (one to one).
Reported per setting and frame size: recall by face size bucket (faces at least 90% visible),
precision (detections matching no face at all, hidden ones included, are false), and
milliseconds per frame (one thread). Then live frames/s with live mode's default detector
settings (``faces=blazeface``, detect every 5th frame, the classifier of
benchmarks/live_pipeline.py exported to ONNX) on composed 640x480 and 1920x1080 street clips:
wall-clock ``fps`` and ``cpu_fps`` (frames per CPU second of the one-thread process, which a
busy shared box distorts less).

Settings: ``mtcnn`` (the new default: smallest face max(32 px, 1/40 of the shorter side)),
``mtcnn_frac0.2`` (the old default, 1/5 of the shorter side), ``mtcnn_px20`` (full pyramid),
``mtcnn_px24``, ``mtcnn_px40``; ``blazeface_short``, ``blazeface_full``, ``blazeface_auto`` (live's default).

Targets: the default (MTCNN) finds >= 95% of the faces of 40 px and larger at 1080p; live
runs >= 30 frames/s at 640x480 with the default detector.

    python -m benchmarks.detect_footage [--scenes 12] [--faces cremad,fer] [--live-frames 150]
Writes benchmarks/results/detect_footage.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from benchmarks.common import DATA_DIR, write_result  # noqa: E402
from benchmarks.footage import compose_clip, compose_frame, load_sources, make_scene, match_boxes  # noqa: E402

BUCKETS = ((20, 30), (30, 40), (40, 60), (60, 100), (100, 200), (200, 401))
SIZES = ((1920, 1080), (640, 480))
VISIBLE = 0.9


def settings() -> dict:
    """Name -> (detector name, options)."""
    return {
        "mtcnn": ("mtcnn", {}),
        "mtcnn_frac0.2": ("mtcnn", {"min_face_frac": 0.2, "min_face_px": None}),
        "mtcnn_px20": ("mtcnn", {"min_face_px": 20, "min_face_frac": 0.0}),
        "mtcnn_px24": ("mtcnn", {"min_face_px": 24, "min_face_frac": 0.0}),
        "mtcnn_px40": ("mtcnn", {"min_face_px": 40, "min_face_frac": 0.0}),
        "blazeface_short": ("blazeface", {"range": "short"}),
        "blazeface_full": ("blazeface", {"range": "full"}),
        "blazeface_auto": ("blazeface", {"range": "auto"}),
    }


def bucket(size: float) -> str | None:
    return next((f"{lo}-{hi - 1 if hi == 401 else hi}" for lo, hi in BUCKETS if lo <= size < hi), None)


def score(gts, detections, sources) -> dict:
    """Recall by size bucket (and, for faces of 40 px and up, by face source: ``cremad``, ``fer``...),
    precision, over frames with ground truth ``gts`` (Box lists); ``sources[i][id]`` names the
    face source of person ``id`` in frame ``i``."""
    hit: dict[str, list[int]] = {}
    by_source: dict[str, list[int]] = {}
    tp = fp = 0
    for boxes, faces, names in zip(gts, detections, sources):
        gt = np.stack([b.xyxy for b in boxes]) if boxes else np.zeros((0, 4))
        pairs = match_boxes(gt, faces.boxes)
        matched_gt = {g for g, _ in pairs}
        tp += len(pairs)
        fp += len(faces) - len(pairs)
        for i, b in enumerate(boxes):
            key = bucket(b.size)
            if key is None or b.visible < VISIBLE:
                continue
            hit.setdefault(key, [0, 0])
            hit[key][0] += i in matched_gt
            hit[key][1] += 1
            if b.size >= 40:
                kind = by_source.setdefault(names[b.id].split("/")[0].split("#")[0], [0, 0])
                kind[0] += i in matched_gt
                kind[1] += 1
    order = [bucket(lo) for lo, _ in BUCKETS]
    recall = {k: {"recall": round(hit[k][0] / hit[k][1], 3), "faces": hit[k][1]} for k in order if k in hit}
    big = [hit[k] for k in order if k in hit and int(k.split("-")[0]) >= 40]
    r40 = sum(h[0] for h in big) / max(1, sum(h[1] for h in big))
    return {"recall_by_size": recall, "recall_40px_up": round(r40, 3),
            "recall_40px_up_by_source": {k: round(h / max(n, 1), 3) for k, (h, n) in sorted(by_source.items())},
            "precision": round(tp / max(1, tp + fp), 3), "detections": tp + fp, "false": fp}


def run_detection(sources, n_scenes: int, seed: int) -> dict:
    from emomm.faces import build_detector

    out: dict = {}
    for w, h in SIZES:
        scenes = [make_scene("still", w, h, sources, seed=seed + k) for k in range(n_scenes)]
        composed = [compose_frame(s) for s in scenes]
        frames, gts = [f for f, _ in composed], [b for _, b in composed]
        names = [{p.id: p.source.name for p in s.people} for s in scenes]
        key = f"{w}x{h}"
        out[key] = {"frames": len(frames), "faces": sum(len(g) for g in gts)}
        for name, (det_name, opts) in settings().items():
            det = build_detector(det_name, warn_after=0, **opts)
            det.detect(frames[0])  # warm-up: lazy model load
            times, found = [], []
            for f in frames:
                t = time.perf_counter()
                found.append(det.detect(f)[0])
                times.append(time.perf_counter() - t)
            res = {**score(gts, found, names), "ms_per_frame": round(1e3 * float(np.median(times)), 1)}
            out[key][name] = res
            print(key, name, res, flush=True)
    return out


def run_live(sources, n_frames: int, seed: int) -> dict:
    from emomm.faces import build_detector
    from emomm.inference.onnx_export import export
    from emomm.live.model_loader import load_classifier

    from benchmarks.live_pipeline import fer_module, run_variant

    tmp = Path(tempfile.mkdtemp())
    export(module=fer_module(), out_dir=tmp)
    clf = load_classifier(tmp, backend="onnxruntime")
    out = {}
    for w, h in SIZES:
        scene = make_scene("street", w, h, sources, seed=seed, seconds=n_frames / 30)
        frames, gts = compose_clip(scene, fps=30)
        cpu = time.process_time()
        res = run_variant(f"live {w}x{h}", clf, build_detector("blazeface"), frames, 5)
        # CPU seconds of this process (one thread): what an idle core would give, less hurt by a busy box
        res["cpu_fps"] = round(len(frames) / max(time.process_time() - cpu, 1e-9), 1)
        res["gt_faces_per_frame"] = round(sum(len([b for b in g if b.visible >= VISIBLE]) for g in gts) / len(gts), 2)
        out[f"{w}x{h}"] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=12, help="still frames per frame size")
    ap.add_argument("--faces", default="cremad,fer")
    ap.add_argument("--data-root", type=Path, default=DATA_DIR)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--live-frames", type=int, default=150)
    ap.add_argument("--name", default="detect_footage")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    sources = load_sources(a.faces.split(","), a.data_root, a.seed)
    detection = run_detection(sources, a.scenes, a.seed)
    live = run_live(sources, a.live_frames, a.seed) if a.live_frames else {}
    default = detection["1920x1080"]["mtcnn"]["recall_40px_up"]
    write_result(a.name, {
        "command": "python -m benchmarks.detect_footage " + " ".join(sys.argv[1:]),
        "footage": f"{a.scenes} still frames per size from benchmarks.footage (scene 'still', seeds {a.seed}.."
                   f"{a.seed + a.scenes - 1}); {len(sources)} face sources: {a.faces}; textured background",
        "matching": f"IoU >= 0.5, one to one; recall over faces >= {VISIBLE:.0%} visible; a face's size is "
                    "sqrt(w*h) of its ground-truth box (MTCNN's box convention on the source)",
        "threads": 1, "detection": detection, "live": live,
        "targets": {"default_recall_40px_up_1080p>=0.95": default >= 0.95,
                    **({"live_fps_640x480>=30": live["640x480"]["fps"] >= 30} if live else {})},
        "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
        "note": "measured on the shared 2-core box with other engineers' tests and benchmarks running beside it "
                "(load averages above); times are medians per frame",
    })


if __name__ == "__main__":
    main()
