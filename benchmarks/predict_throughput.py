"""Predict throughput: images (faces/s, MTCNN + classifier) and audio (seconds of audio per second).

    python -m benchmarks.predict_throughput                     # trains a tiny face+voice model first
    python -m benchmarks.predict_throughput --ckpt best.ckpt --images 200 --audio 20
    python -m benchmarks.predict_throughput --short             # a quick check that it runs

Images are FER2013 photos from data/fer2013 (EMOMM_DATA_DIR sets data/) (48x48 gray face crops, so MTCNN
runs on small frames) or, without them, generated 256x256 frames holding skimage's
astronaut; audio is CREMA-D / RAVDESS files from data/. Writes
benchmarks/results/predict_throughput.json. The tiny default model measures the pipeline
(decoding, detection, preprocessing, batching), not a production backbone.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import DATA_DIR, write_result

DATA = Path(os.environ.get("EMOMM_SHARED_DATA", DATA_DIR))
TINY = ["modality=multimodal", "modalities=[face,voice]", "fusion=late", "model/face_encoder=timm",
        "model.encoders.face.backbone=resnet10t", "face.image_size=48", "face.in_chans=1",
        "voice.duration=3.0", "data.n_train=28", "data.n_val=7", "data.n_test=7", "data.batch_size=7",
        "debug=limit", "trainer.max_epochs=1", "test=false"]


def tiny_checkpoint(out: Path) -> str:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "offline")
    from tests.conftest import make_cfg
    from emomm.train import train
    out.mkdir(parents=True, exist_ok=True)
    return train(make_cfg("train", out, TINY))["best_ckpt"]


def image_files(n: int, tmp: Path) -> list[Path]:
    files = sorted((DATA / "fer2013").glob("**/*.jpg"))[:n]
    if len(files) >= n:
        return files
    import numpy as np
    import skimage.data
    from PIL import Image
    face = skimage.data.astronaut()[:256, 96:352]
    out = []
    for i in range(n):
        p = tmp / f"img_{i}.png"
        Image.fromarray(np.roll(face, i % 7, axis=1)).save(p)
        out.append(p)
    return out


def audio_files(n: int) -> list[Path]:
    cremad = sorted((DATA / "cremad_sample").glob("*.flv"))
    ravdess = sorted((DATA / "ravdess").glob("**/03-*.*"))
    files = cremad[: n // 2] + ravdess[: n - n // 2]
    return (files + [f for f in cremad + ravdess if f not in files])[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--audio", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--short", action="store_true", help="20 images, 4 audio files")
    ap.add_argument("--name", default=None, help="result file name (default predict_throughput[_short])")
    args = ap.parse_args()
    if args.short:
        args.images, args.audio = 20, 4
    import torch
    from emomm.inference.predictor import Predictor
    from emomm.media.audio import audio_duration

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = args.ckpt or tiny_checkpoint(tmp / "run")
        p = Predictor.from_checkpoint(ckpt, batch_size=args.batch_size)
        result = {"ckpt": "tiny resnet10t face + cnn_lstm voice (synthetic)" if not args.ckpt else str(args.ckpt),
                  "threads": torch.get_num_threads(), "batch_size": args.batch_size,
                  "note": "measured on a shared 2-core box with other processes running" if args.short else ""}
        imgs = image_files(args.images, tmp)
        if imgs and p.face_modality:
            p.predict_image(imgs[0])  # warm-up: loads MTCNN
            t0, faces, no_face = time.perf_counter(), 0, 0
            for f in imgs:
                r = p.predict_image(f).to_dict()
                n = len(r.get("faces") or [])
                faces += n
                no_face += n == 0
            dt = time.perf_counter() - t0
            result["images"] = {"files": len(imgs), "source": str(imgs[0].parent), "faces": faces,
                                "no_face": no_face, "seconds": round(dt, 3),
                                "images_per_s": round(len(imgs) / dt, 2), "faces_per_s": round(faces / dt, 2)}
        auds = audio_files(args.audio)
        if auds and "voice" in p.modalities:
            p.predict_audio(auds[0])  # warm-up
            total = sum(audio_duration(f) for f in auds)
            t0 = time.perf_counter()
            windows = sum(len(p.predict_audio(f).to_dict().get("windows") or []) for f in auds)
            dt = time.perf_counter() - t0
            result["audio"] = {"files": len(auds), "audio_seconds": round(total, 2), "windows": windows,
                               "seconds": round(dt, 3), "audio_s_per_s": round(total / dt, 2)}
    write_result(args.name or ("predict_throughput_short" if args.short else "predict_throughput"), result)


if __name__ == "__main__":
    main()
