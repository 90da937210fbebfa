"""Per-face-crop latency and file size: PyTorch vs ONNX Runtime fp32 vs int8 (dynamic, static).

    python -m benchmarks.export_latency [--repeats 200] [--ckpt best.ckpt]

Batch of one crop, one thread (the live pipeline's case). Without --ckpt: the FER recipe's
network (ResNet-18 without stem pool, 48 px gray, mirror TTA in the graph) and the default
EfficientNet-B0 at 64 px, untrained (latency and size do not depend on the weights; static
int8 is calibrated on random crops, so only its speed is meaningful here).
Writes benchmarks/results/export_latency.json.
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
import torch  # noqa: E402

from benchmarks.common import write_result  # noqa: E402


def module(backbone: str, size: int, chans: int, **enc):
    from emomm.models.module import EmotionModule

    torch.manual_seed(0)
    return EmotionModule(
        label_names=[str(i) for i in range(7)],
        encoders={"face": {"_target_": "emomm.models.encoders.face_timm.FaceEncoder", "backbone": backbone,
                           "in_chans": chans, **enc}},
        fusion={"_target_": "emomm.models.fusion.IdentityFusion"},
        optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}, tta_hflip=["face"],
        preprocessing={"face": {"image_size": size, "in_chans": chans}}).eval()


def timed(fn, repeats: int) -> dict:
    for _ in range(10):
        fn()
    lat = []
    for _ in range(repeats):
        s = time.perf_counter()
        fn()
        lat.append((time.perf_counter() - s) * 1e3)
    return {"p50_ms": round(float(np.percentile(lat, 50)), 3), "p95_ms": round(float(np.percentile(lat, 95)), 3)}


def bench(name, m, repeats):
    from emomm.inference.onnx_export import ExportNet, export, graph_args, quantize_int8
    from emomm.inference.onnx_runner import OnnxRunner

    out = Path(tempfile.mkdtemp())
    meta = export(module=m, out_dir=out, quantize="int8", quantize_method="dynamic")
    w = ExportNet(m)
    p = m.hparams.preprocessing["face"]
    x = torch.randn(1, p["in_chans"], p["image_size"], p["image_size"])
    calib = [graph_args(w, {"face": torch.randn(8, *x.shape[1:])}) for _ in range(4)]
    quantize_int8(out / "model.onnx", out / "model.static.onnx", w.input_names, calib, method="static")
    batch = {"inputs": {"face": x}, "present": {}, "lengths": {}}
    res = {}
    with torch.inference_mode():
        res["pytorch"] = timed(lambda: m(batch), repeats)
    xs = x.numpy()
    sizes = {"pytorch_state_dict": sum(t.numel() * t.element_size() for t in m.net.state_dict().values())}
    for kind, f in (("onnx_fp32", "model.onnx"), ("onnx_int8_dynamic", "model.int8.onnx"),
                    ("onnx_int8_static", "model.static.onnx")):
        r = OnnxRunner(out / f, meta, threads=1)
        res[kind] = timed(lambda: r.run({"face": xs}), repeats)
        sizes[kind] = (out / f).stat().st_size
    print(name, res, sizes, flush=True)
    return {"latency_per_crop": res, "size_bytes": sizes, "check": meta["check"]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--out", default="export_latency")
    a = p.parse_args()
    torch.set_num_threads(1)
    models = {"resnet18_48px_gray_fer": module("resnet18", 48, 1, stem_pool=False),
              "efficientnet_b0_64px_rgb": module("efficientnet_b0", 64, 3)}
    write_result(a.out, {
        "command": "python -m benchmarks.export_latency " + " ".join(sys.argv[1:]),
        "batch": 1, "threads": 1, "tta_views": 2,
        "results": {k: bench(k, m, a.repeats) for k, m in models.items()},
        "note": "measured with other engineers' processes sharing the 2 cores; re-run alone for final figures",
    })


if __name__ == "__main__":
    main()
