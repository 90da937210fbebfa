"""The default live path with the zoo face model, PyTorch against ONNX Runtime, in one run.

    python -m benchmarks.live_backends [--frames 300] [--threads 2] [--rounds 2] [--ckpt zoo:face-fer2013]

Real 640x480 video (CREMA-D clips scaled up, decoded up front: capture is not timed) through
``python -m emomm.live``'s default pipeline (conf/live.yaml: BlazeFace every ``detect_every``
frames, tracking in between, every face classified every frame) on the classifier loaded as
live loads it: ``backend=torch`` and ``backend=auto`` (ONNX Runtime on the cached,
parity-checked export). Per frame: detection/tracking + crop + classifier (the overlay is not
drawn). The rounds alternate the two backends so a change in the shared box's load hits both.
Also the classifier alone: one 48x48 crop per call. Writes benchmarks/results/live_backends.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

THREADS = "2"
if "--threads" in sys.argv:
    THREADS = sys.argv[sys.argv.index("--threads") + 1]
os.environ.setdefault("OMP_NUM_THREADS", THREADS)   # onnxruntime's session reads it

import numpy as np  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from benchmarks.common import ROOT, write_result  # noqa: E402
from benchmarks.live_pipeline import real_frames  # noqa: E402


def pipeline_run(clf, frames, pipeline_cfg) -> dict:
    """Frames/s and per-frame latency of the live pipeline with ``clf`` on ``frames``."""
    from emomm.faces import build_detector
    from emomm.live.stream import LivePipeline

    detector = build_detector("blazeface")
    pipe = LivePipeline(clf, detector, **pipeline_cfg)
    pipe.process(frames[0], 0.0)   # warm-up (lazy loads)
    lat, faces = [], 0
    start = time.perf_counter()
    for i, f in enumerate(frames):
        s = time.perf_counter()
        r = pipe.process(f, i / 30)
        lat.append((time.perf_counter() - s) * 1e3)
        faces += len(r.faces)
    wall = time.perf_counter() - start
    return {"frames": len(frames), "wall_s": wall, "lat": lat, "faces_per_frame": faces / len(frames)}


def classifier_ms(clf, crop: np.ndarray, n: int) -> list[float]:
    clf.classify_faces(crop[None])
    out = []
    for _ in range(n):
        s = time.perf_counter()
        clf.classify_faces(crop[None])
        out.append((time.perf_counter() - s) * 1e3)
    return out


def summary(runs: list[dict], clf_ms: list[float]) -> dict:
    lat = np.concatenate([r["lat"] for r in runs])
    frames = sum(r["frames"] for r in runs)
    return {"frames": frames, "fps": round(frames / sum(r["wall_s"] for r in runs), 1),
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
            "faces_per_frame": round(float(np.mean([r["faces_per_frame"] for r in runs])), 3),
            "classifier_ms_p50": round(float(np.percentile(clf_ms, 50)), 3),
            "classifier_ms_p95": round(float(np.percentile(clf_ms, 95)), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--threads", type=int, default=int(THREADS))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--classifier-calls", type=int, default=300)
    p.add_argument("--ckpt", default="zoo:face-fer2013")
    p.add_argument("--out", default="live_backends")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from emomm.live.model_loader import load_classifier

    pipeline_cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "live.yaml").pipeline)
    pipeline_cfg = {k: v for k, v in pipeline_cfg.items() if k not in ("voice_every_s", "fuse")}
    load0 = os.getloadavg()
    t = time.perf_counter()
    clfs = {"torch": load_classifier(a.ckpt, backend="torch"), "onnxruntime": load_classifier(a.ckpt, backend="auto")}
    load_s = round(time.perf_counter() - t, 2)
    if clfs["onnxruntime"].backend != "onnxruntime":
        sys.exit(f"backend=auto did not pick ONNX Runtime: {clfs['onnxruntime'].backend_note}")
    frames, files = real_frames(a.frames)
    crop = np.asarray(frames[0][100:300, 200:400][::4, ::4][:48, :48])
    runs = {k: [] for k in clfs}
    ms = {k: [] for k in clfs}
    for _ in range(a.rounds):
        for name, clf in clfs.items():
            runs[name].append(pipeline_run(clf, frames, pipeline_cfg))
            ms[name] += classifier_ms(clf, crop, a.classifier_calls // a.rounds)
            print(name, summary(runs[name][-1:], ms[name]), flush=True)
    results = {name: summary(runs[name], ms[name]) for name in clfs}
    default = results["onnxruntime"]
    write_result(a.out, {
        "command": "python -m benchmarks.live_backends " + " ".join(sys.argv[1:]),
        "video": f"{len(files)} CREMA-D clips (480x360 FLV) scaled to 640x480, looped, decoded up front",
        "model": a.ckpt, "threads": a.threads, "rounds": a.rounds, "pipeline": pipeline_cfg, "detector": "blazeface",
        "per_frame": "detection/tracking + crop + classifier (no overlay drawing)",
        "results": results, "load_both_s": load_s,
        "onnx_note": clfs["onnxruntime"].backend_note,
        "speedup_onnx_vs_torch": round(default["fps"] / results["torch"]["fps"], 2),
        "targets": {"fps>=30": default["fps"] >= 30, "p95<=50ms": default["latency_ms_p95"] <= 50},
        "load_before": [round(x, 2) for x in load0], "load_after": [round(x, 2) for x in os.getloadavg()],
        "note": "the box is shared: other engineers' tests and trainings ran beside this benchmark "
                "(load_before / load_after: 1, 5, 15-minute load averages on 2 cores)",
    })


if __name__ == "__main__":
    main()
