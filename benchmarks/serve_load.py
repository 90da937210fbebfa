"""Bounded loopback load test of the web app: N concurrent clients for T seconds.

    python -m benchmarks.serve_load                      # 20 clients, 60 s, tiny face+text model
    python -m benchmarks.serve_load --clients 4 --seconds 10 --ckpt path/to/best.ckpt

Starts ``python -m emomm.serve`` on 127.0.0.1 at a free port (the real entry point, in its
own process), runs the clients (asyncio + httpx), each alternating an image upload
(``/api/predict/image``, a 320x240 JPEG of a synthetic face) and a text request
(``/api/predict/text``) until the time is up, then stops the server. Without ``--ckpt`` it
first trains a tiny face+text model on synthetic data (about 20 s) so both endpoints answer.
Writes requests/s, p50/p95/p99 latency (overall and per endpoint) and the error count to
``benchmarks/results/serve_load.json`` (``--name`` changes the file name).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, write_result

TINY = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=32",
        "+model/text_encoder@model.encoders.text=scratch", "modalities=[face,text]", "fusion=concat",
        "+text={max_length:64,context_turns:0,speakers:true,ambiguity:0.3,augment:{word_dropout:0.1}}",
        "data.n_train=28", "data.n_val=14", "data.n_test=14", "data.batch_size=7", "trainer.max_epochs=1"]
SENTENCES = ["I am so happy to see you!", "This is terrible, I hate it.", "Oh no, what was that noise?",
             "Well, that is a surprise.", "I feel a bit down today.", "Nothing special happened."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_tiny(out: Path) -> Path:
    cmd = [sys.executable, "-m", "emomm.train", *TINY, f"hydra.run.dir={out}"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return out / "checkpoints" / "best.ckpt"


def face_jpeg() -> bytes:
    from PIL import Image
    from tests.serve_helpers import face_frame
    buf = io.BytesIO()
    Image.fromarray(face_frame()).save(buf, "JPEG", quality=90)
    return buf.getvalue()


async def client(http, base: str, deadline: float, k: int, image: bytes, log: list) -> None:
    i = k
    while time.perf_counter() < deadline:
        kind = "image" if i % 2 == 0 else "text"
        t0 = time.perf_counter()
        try:
            if kind == "image":
                r = await http.post(f"{base}/api/predict/image", files={"file": ("face.jpg", image, "image/jpeg")})
            else:
                r = await http.post(f"{base}/api/predict/text", data={"text": SENTENCES[i % len(SENTENCES)]})
            status = r.status_code
        except Exception as err:  # a refused connection or a timeout counts as an error
            status = type(err).__name__
        log.append((kind, t0, time.perf_counter() - t0, status))
        i += 1


async def run_clients(base: str, clients: int, seconds: float, image: bytes) -> tuple[list, float]:
    import httpx
    log: list = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(client(http, base, deadline, k, image, log) for k in range(clients)))
        wall = time.perf_counter() - start
    return log, wall


def pct(values, q) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if len(values) else None


def summarize(log: list, wall: float) -> dict:
    out = {"requests": len(log), "wall_s": round(wall, 2), "requests_per_s": round(len(log) / wall, 2),
           "errors": sum(1 for *_, s in log if s != 200),
           "error_statuses": sorted({str(s) for *_, s in log if s != 200})}
    for name, rows in (("all", log), ("image", [r for r in log if r[0] == "image"]),
                       ("text", [r for r in log if r[0] == "text"])):
        lat = [r[2] for r in rows]
        out[f"latency_ms_{name}"] = {"n": len(lat), "p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99),
                                     "max": pct(lat, 100)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--ckpt", type=Path, default=None, help="a face+text checkpoint (default: train a tiny one)")
    ap.add_argument("--workers", type=int, default=2, help="the server's concurrent inferences")
    ap.add_argument("--name", default="serve_load")
    args = ap.parse_args()

    import httpx
    tmp = Path(tempfile.mkdtemp(prefix="serve_load_"))
    ckpt = args.ckpt or train_tiny(tmp / "run")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "emomm.serve", f"ckpt_path={ckpt}", "host=127.0.0.1", f"port={port}",
           f"workers={args.workers}"]
    print("$", " ".join(cmd), flush=True)
    server = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        deadline = time.time() + 120
        while True:   # wait for the model to load
            if server.poll() is not None:
                raise SystemExit(f"the server exited with {server.returncode}")
            try:
                model = httpx.get(f"{base}/api/model", timeout=2).json()
                break
            except httpx.HTTPError:
                if time.time() > deadline:
                    raise SystemExit("the server did not answer within 120 s")
                time.sleep(0.5)
        missing = {"face", "text"} - set(model["modalities"])
        if missing:
            raise SystemExit(f"{ckpt} lacks {sorted(missing)}: the load test mixes image and text requests")
        image = face_jpeg()
        # warm-up: first calls load MTCNN and fill caches
        for _ in range(2):
            httpx.post(f"{base}/api/predict/image", files={"file": ("f.jpg", image)}, timeout=60)
            httpx.post(f"{base}/api/predict/text", data={"text": "hello"}, timeout=60)
        print(f"{args.clients} clients for {args.seconds:.0f} s against {base}", flush=True)
        log, wall = asyncio.run(run_clients(base, args.clients, args.seconds, image))
        stats = httpx.get(f"{base}/api/stats", timeout=5).json()
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    write_result(args.name, {"clients": args.clients, "seconds": args.seconds, "server_workers": args.workers,
                             "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "checkpoint": str(ckpt),
                             "modalities": model["modalities"], **summarize(log, wall), "server_counts": stats})


if __name__ == "__main__":
    main()
