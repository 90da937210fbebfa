"""Shared by the web-app tests: a tiny trained face checkpoint, a live uvicorn server on a
free loopback port, and the fake camera/microphone files for Chromium."""
from __future__ import annotations

import socket
import threading
import time
import wave
from contextlib import contextmanager
from pathlib import Path

import numpy as np

TINY_FACE = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=32",
             "data.n_train=28", "data.n_val=14", "data.n_test=14", "data.batch_size=7",
             "trainer.max_epochs=1", "debug=limit"]


def tiny_face_checkpoint(base: Path) -> Path:
    """Train (once per test session: cached under ``base``) a tiny face model; its run
    folder holds metrics.json beside ``checkpoints/``."""
    ckpt = base / "serve_run" / "checkpoints" / "best.ckpt"
    if not ckpt.is_file():
        from hydra.core.global_hydra import GlobalHydra

        from emomm.train import train
        from tests.conftest import make_cfg
        (base / "serve_run").mkdir(parents=True, exist_ok=True)
        train(make_cfg("train", base / "serve_run", TINY_FACE))
        GlobalHydra.instance().clear()
    return ckpt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(app, port: int | None = None):
    """``app`` served by uvicorn on 127.0.0.1 in a thread; yields the base URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, ws_max_size=8 * 1024 * 1024))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def face_frame(width: int = 320, height: int = 240, spec_index: int = 4) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]``: a synthetic face (one MTCNN finds) on its own background."""
    from emomm.data.synthetic.face_render import render_face
    from emomm.data.synthetic.spec import draw_spec

    side = int(min(width, height) * 2 / 3)
    face = render_face(draw_spec(0, spec_index), side)
    frame = np.full((height, width), int(face[0, 0]), np.uint8)
    y0, x0 = (height - side) // 2, (width - side) // 2
    frame[y0:y0 + side, x0:x0 + side] = face
    return np.repeat(frame[..., None], 3, axis=-1)


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """YUV4MPEG2 (4:2:0, BT.601 full range): what Chromium's fake camera reads (it loops)."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u = (b - y) * 0.564 + 128
            v = (r - y) * 0.713 + 128
            sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
            f.write(b"FRAME\n")
            for plane in (y, sub(u), sub(v)):
                f.write(np.clip(plane.round(), 0, 255).astype(np.uint8).tobytes())
    return path


def write_tone_wav(path: Path, seconds: float = 2.0, sr: int = 16000) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    pcm = (0.3 * np.sin(2 * np.pi * 330 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return path
