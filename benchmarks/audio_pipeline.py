"""Throughput of the voice input pipeline, in clips per second into the model.

Measures, on RAVDESS (or a generated stand-in when it is absent):
  * decode: reading + resampling every file from disk (soundfile + torchaudio, thread pool),
    i.e. the one-off cost of the in-memory cache at setup;
  * loader: the training DataLoader from the cache (speed perturbation, crop, gain, shift,
    noise, collate into padded batches), clips/s;
  * loader_nocache: the same, decoding each file on every access (cache: false);
  * frontend: the log-mel frontend of the encoder on those batches, clips/s;
  * encoder_train: one training step of the default VoiceEncoder (forward + backward), clips/s.
    python -m benchmarks.audio_pipeline [--root PATH] [--threads 1] [--batches 10]
Writes benchmarks/results/audio_pipeline.json (--name changes the file name).
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import DATA_DIR, ROOT, write_result


def clips_per_s(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(DATA_DIR / "ravdess"))
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--batches", type=int, default=10, help="batches timed per measurement")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--name", default="audio_pipeline", help="result file name (no path)")
    args = ap.parse_args()
    if "/" in args.name or "\\" in args.name:
        sys.exit("--name is a file name under benchmarks/results/, not a path")
    logging.basicConfig(level=logging.WARNING)

    import torch
    from omegaconf import OmegaConf

    from emomm.data.datasets.ravdess import RavdessDataModule
    from emomm.models.encoders.voice_cnn_lstm import VoiceEncoder

    torch.set_num_threads(args.threads)
    root = Path(args.root)
    source = "ravdess"
    if not root.exists():
        from tests.voice_fixtures import write_ravdess_tree
        root = Path(tempfile.mkdtemp()) / "ravdess"
        write_ravdess_tree(root, actors=range(1, 11), seconds=3.5)
        source = "generated stand-in (tests/voice_fixtures.py)"
    voice = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "modality" / "voice.yaml"))["voice"]
    enc_cfg = OmegaConf.load(ROOT / "conf" / "model" / "voice_encoder" / "cnn_lstm.yaml")
    enc_cfg.sample_rate = voice["sample_rate"]
    enc_kwargs = {k: v for k, v in OmegaConf.to_container(enc_cfg).items() if k != "_target_"}
    clip = dict(sample_rate=voice["sample_rate"], duration=voice["duration"], pad=voice["pad"],
                trim_db=40, augment=voice["augment"])
    common = dict(root=str(root), batch_size=args.batch_size, num_workers=0, load_workers=args.threads, **clip)

    out: dict = {"source": source, "threads": args.threads, "batch_size": args.batch_size,
                 "clip": {k: v for k, v in clip.items() if k != "augment"}, "augment": voice["augment"]}

    start = time.perf_counter()
    dm = RavdessDataModule(**common)
    dm.setup()
    decode_s = time.perf_counter() - start
    n_files = sum(len(dm.splits[s]) for s in ("train", "val") if s in dm.splits)
    n_files += 0 if dm.splits["test"] is dm.splits["val"] else len(dm.splits["test"])
    out["decode"] = {"clips": n_files, "seconds": round(decode_s, 2), "clips_per_s": clips_per_s(n_files, decode_s)}

    def time_loader(datamodule) -> tuple[float, int, list]:
        batches, n = [], 0
        it = iter(datamodule.train_dataloader())
        t = time.perf_counter()
        for _ in range(args.batches):
            try:
                b = next(it)
            except StopIteration:
                it = iter(datamodule.train_dataloader())
                b = next(it)
            batches.append(b)
            n += b["label"].shape[0]
        return time.perf_counter() - t, n, batches

    s, n, batches = time_loader(dm)
    out["loader"] = {"clips": n, "seconds": round(s, 2), "clips_per_s": clips_per_s(n, s)}
    nocache = RavdessDataModule(**{**common, "cache": False})
    nocache.setup()
    s2, n2, _ = time_loader(nocache)
    out["loader_nocache"] = {"clips": n2, "seconds": round(s2, 2), "clips_per_s": clips_per_s(n2, s2)}

    enc = VoiceEncoder(**enc_kwargs)
    with torch.no_grad():
        enc.frontend(batches[0]["inputs"]["voice"], batches[0]["lengths"].get("voice"))
        t = time.perf_counter()
        for b in batches:
            enc.frontend(b["inputs"]["voice"], b["lengths"].get("voice"))
        s3 = time.perf_counter() - t
    out["frontend"] = {"clips": n, "seconds": round(s3, 3), "clips_per_s": clips_per_s(n, s3)}
    enc.train()
    opt = torch.optim.AdamW(enc.parameters())
    t = time.perf_counter()
    for b in batches:
        enc(b["inputs"]["voice"], b["lengths"].get("voice")).sum().backward()
        opt.step()
        opt.zero_grad()
    s4 = time.perf_counter() - t
    out["encoder_train"] = {"clips": n, "seconds": round(s4, 2), "clips_per_s": clips_per_s(n, s4)}
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        enc = enc.to(dev).eval()
        with torch.no_grad():
            xs = [(b["inputs"]["voice"].to(dev), b["lengths"].get("voice")) for b in batches]
            enc.frontend(*xs[0])
            torch.cuda.synchronize()
            t = time.perf_counter()
            for x, ln in xs:
                enc.frontend(x, ln)
            torch.cuda.synchronize()
            out["frontend_cuda"] = {"clips": n, "clips_per_s": clips_per_s(n, time.perf_counter() - t)}
    write_result(args.name, out)


if __name__ == "__main__":
    main()
