"""Record golden outputs: ``python -m tests.golden.record [--demo]`` (from the repo root).

Each case in :data:`CASES` is a short seeded training run of one kind of recipe on tiny
generated data (in-process, one thread, fp32). What it records, into ``tests/golden/<case>.json``:

* ``metrics``: the run's metrics.json, every value (less the wall-clock time and the
  checkpoint's folder);
* ``logged``: every row of the run's csv/metrics.csv (the per-epoch and per-step values);
* ``weights``: the sha256 of the best checkpoint's state_dict (key, dtype, shape and bytes of
  every tensor in key order), its keys and shapes, and float sums for a tolerant comparison;
* ``predictions``: probabilities of the best checkpoint through the public
  :class:`emomm.Predictor` on generated inputs;
* ``hparams``: the checkpoint's ``hyper_parameters`` as written today (config only), so a
  test can rebuild "a checkpoint written before the move" (:func:`legacy_checkpoint`).

``--demo`` also records ``demo.json``: the metrics.json of ``make demo``'s training run
(``python -m emomm.train experiment=demo`` in a fixed folder, one thread; a few minutes).

Floats are stored as ``float.hex()`` so that comparisons can be bit for bit; the machine's
fingerprint (CPU model, torch version, threads) is stored beside them.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")

import numpy as np
import torch

GOLDEN_DIR = Path(__file__).resolve().parent
ROOT = GOLDEN_DIR.parents[1]
#: metrics.json entries that are not behaviour: wall-clock time, this run's folder, the commit that trained it
VOLATILE = ("train_time_s", "best_ckpt", "git_commit")

COMMON = ["trainer.precision=32-true",  # "auto" is bf16 on some CPUs: one numeric path everywhere
          "trainer.accelerator=cpu", "trainer.devices=1", "trainer.deterministic=false"]
SMALL_SYNTH = ["data.n_train=28", "data.n_val=14", "data.n_test=14"]
#: recipe options for their real datasets that the synthetic data does not take
NOT_SYNTHETIC = ("data.root", "data.crop_size", "data.eval_batch_size", "data.drop_last", "data.augment",
                 "text.future_turns")

# -- the cases -------------------------------------------------------------------------------------

def _ravdess(tmp: Path) -> list[str]:
    from tests.voice_fixtures import write_ravdess_tree
    root = tmp / "ravdess"
    write_ravdess_tree(root, actors=range(1, 7), seconds=0.5)
    return [f"data.root={root}"]


#: name -> (overrides, a function writing its on-disk data into a folder and returning more
#: overrides, or None). Each is a recipe's model and options on tiny data, a few batches.
#: A recipe's own dataset options that ``data=synthetic`` does not take are dropped from the
#: composed config (:data:`NOT_SYNTHETIC`).
CASES: dict[str, tuple[list[str], Callable[[Path], list[str]] | None]] = {
    # experiment=fer2013_fast's model and techniques (whitened CNN, SGD Nesterov, warmup_linear,
    # label smoothing, no head bias, channels_last, Lookahead, small crops, tta_hflip) on synthetic faces
    "face": (["experiment=fer2013_fast", "data=synthetic", *SMALL_SYNTH, "data.batch_size=7",
              "face.augment.rotation=0", "face.augment.brightness=0", "face.augment.contrast=0",
              "face.augment.crop_scale=null", "face.augment.erasing=0.25",
              "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=2", "trainer.limit_train_batches=3",
              "trainer.limit_val_batches=2", "trainer.limit_test_batches=2",
              "callbacks.small_crops.epochs=1", "callbacks.lookahead.every=2"], None),
    # experiment=ravdess_voice (CNN-BiLSTM, trimming, padded batches with lengths, speed
    # perturbation, class weights, aux tasks sex + intensity) on a tiny RAVDESS tree
    "voice": (["experiment=ravdess_voice", "data.train_speakers=[1,2,3,4]", "data.val_speakers=[5,6]",
               "data.batch_size=8", "data.eval_batch_size=8", "voice.duration=1.0",
               "voice.eval_windows={hop_s: 0.5, window_s: 0.5}",
               "trainer.max_epochs=2", "trainer.limit_train_batches=2", "trainer.limit_val_batches=2",
               "trainer.limit_test_batches=2"], _ravdess),
    # experiment=meld_text's model (MiniLM, finetune all, frozen embeddings, grad clipping) on
    # synthetic text, with layer-wise rate decay and R-Drop
    "text": (["experiment=meld_text", "data=synthetic", "data.n_train=16", "data.n_val=8", "data.n_test=8",
              "data.batch_size=4", "text.max_length=32",
              "model.layer_lr_decay=0.8", "model.rdrop=1.0",
              "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
              "trainer.limit_test_batches=1"], None),
    # experiment=fusion_synthetic (face + text, noisy modalities, automatic fusion). The scratch
    # text encoder's BPE tokenizer: recorded when its default WordPiece one was not yet
    # reproducible (tokenizers#1794; text_scratch.continuing_pieces fixes it since)
    "fusion": (["experiment=fusion_synthetic", *SMALL_SYNTH, "data.batch_size=7", "face.image_size=32",
                "model.encoders.text.tokenizer=bpe",
                "trainer.max_epochs=2", "trainer.limit_train_batches=2", "trainer.limit_val_batches=2",
                "trainer.limit_test_batches=2"], None),
    # face + voice with the training techniques: EMA, encoder freezing, OGM-GE, modality
    # dropout, mixup, head rate scale, class weights, tta shift + hflip, voice eval windows
    "techniques": (["modality=multimodal", "modalities=[face,voice]", "fusion=concat", "callbacks=[ema,freeze_encoders,ogm_ge]",
                    "callbacks.ema.decay=0.9", "model/face_encoder=timm", "model.encoders.face.backbone=resnet10t",
                    "face.image_size=32", "voice.duration=1.0", "voice.eval_windows={hop_s: 0.5, window_s: 0.5}",
                    *SMALL_SYNTH, "data.batch_size=7", "data.missing=0.2",
                    "callbacks.freeze_encoders.epochs={face: 1}",
                    "model.modality_dropout=0.3", "model.mixup={alpha: 0.4}", "model.head_lr_scale=2.0",
                    "model.class_weights=balanced", "model.tta_hflip=[face]", "++model.tta_shift={face: 1}",
                    "trainer.max_epochs=2", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
                    "trainer.limit_test_batches=1"], None),
}


# -- exact encoding -----------------------------------------------------------------------------

def exact(obj: Any) -> Any:
    """JSON-able copy of ``obj`` with every float as ``float.hex()`` (bit for bit)."""
    if isinstance(obj, dict):
        return {str(k): exact(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [exact(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj).hex()
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return exact(obj.tolist())
    if isinstance(obj, torch.Tensor):
        return exact(obj.tolist())
    return obj


def fingerprint() -> dict[str, Any]:
    """What decides whether bit-for-bit equality can be expected."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return {"cpu": cpu, "machine": platform.machine(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version()}


def weights_record(state_dict: dict[str, Any]) -> dict[str, Any]:
    """sha256 over every entry (key, dtype, shape, bytes; non-tensors by repr) in key order,
    the keys with their shapes, and float64 sums for a tolerant comparison."""
    h = hashlib.sha256()
    shapes, total, total_abs = {}, 0.0, 0.0
    for key in state_dict:
        v = state_dict[key]
        h.update(key.encode())
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
            shapes[key] = list(t.shape)
            if t.is_floating_point():
                total += float(t.double().sum())
                total_abs += float(t.double().abs().sum())
        else:
            h.update(repr(v).encode())
            shapes[key] = None
    return {"sha256": h.hexdigest(), "shapes": shapes, "sum": total, "abs_sum": total_abs}


# -- generated inputs and predictions -----------------------------------------------------------

def generated_inputs() -> dict[str, Any]:
    """Inputs of every modality, the same on every call: faces (uint8 RGB crops), a voice
    wave (16 kHz, 2.2 s) and texts."""
    rng = np.random.default_rng(43)
    faces = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    faces[1] = np.clip(faces[1] // 2 + 100, 0, 255)
    t = np.arange(int(2.2 * 16000)) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
            + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
    texts = ["I am so happy today!", "This is terrible, I hate it.", "What? Really?"]
    return {"faces": faces, "wave": wave, "sr": 16000, "texts": texts}


def predictions(ckpt: Path) -> dict[str, Any]:
    """Probabilities of ``ckpt`` through :class:`emomm.Predictor` on :func:`generated_inputs`."""
    from emomm import Predictor
    p = Predictor.from_checkpoint(ckpt, batch_size=4)
    x = generated_inputs()
    mods = set(p.modalities)
    out: dict[str, Any] = {"label_names": list(p.label_names)}
    if "face" in mods:
        out["classify_faces"] = p.classify_faces(x["faces"])
    if "voice" in mods:
        out["classify_audio"] = p.classify_audio(x["wave"], x["sr"])
        audio = p.predict_audio(x["wave"], x["sr"]).to_dict()
        out["predict_audio"] = audio
    if "text" in mods:
        out["predict_text"] = [r.probs for r in p.predict_text(x["texts"])]
    sample = {"face": x["faces"][0] if "face" in mods else None,
              "voice": x["wave"] if "voice" in mods else None,
              "text": x["texts"][0] if "text" in mods else None}
    res = p.predict_sample(**sample, sr=x["sr"] if "voice" in mods else None)
    out["predict_sample"] = res.to_dict()
    return exact(out)


# -- one run ------------------------------------------------------------------------------------

def run_case(name: str, work: Path) -> dict[str, Any]:
    """Train case ``name`` in ``work`` (fresh) and return what is recorded of it, plus the
    best checkpoint's path under ``"ckpt"`` (not recorded)."""
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    from emomm.train import train
    from tests.conftest import make_cfg

    overrides, make_data = CASES[name]
    (work / "run").mkdir(parents=True, exist_ok=True)
    extra = make_data(work) if make_data else []
    torch.set_num_threads(1)
    try:
        cfg = make_cfg("train", work / "run", [*overrides, *extra, *COMMON])
        if "data=synthetic" in overrides:
            with open_dict(cfg):
                for key in NOT_SYNTHETIC:
                    parent, _, leaf = key.rpartition(".")
                    if parent in cfg:
                        cfg[parent].pop(leaf, None)
        summary = train(cfg)
    finally:
        GlobalHydra.instance().clear()
    out = work / "run"
    metrics = json.loads((out / "metrics.json").read_text())
    ckpt = Path(summary["best_ckpt"])
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    with open(out / "csv" / "metrics.csv") as f:
        logged = [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    return {
        "overrides": [*overrides, *COMMON],
        "metrics": exact({k: v for k, v in metrics.items() if k not in VOLATILE}),
        "logged": exact([{k: float(v) for k, v in row.items()} for row in logged]),
        "weights": exact(weights_record(saved["state_dict"])),
        "predictions": predictions(ckpt),
        "hparams": json.loads(json.dumps(saved["hyper_parameters"], default=repr)),
        "ckpt": str(ckpt),
    }


def legacy_checkpoint(new_ckpt: Path, hparams: dict[str, Any], dest: Path) -> Path:
    """"A checkpoint written before the move": ``new_ckpt`` with the recorded (old)
    ``hyper_parameters`` in place of its own. Returns ``dest``."""
    saved = torch.load(new_ckpt, map_location="cpu", weights_only=False)
    saved["hyper_parameters"] = hparams
    torch.save(saved, dest)
    return dest


def golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.json"


def record(names: list[str]) -> None:
    torch.set_num_threads(1)
    for name in names:
        start = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            rec = run_case(name, Path(tmp))
        rec.pop("ckpt")
        rec = {"fingerprint": fingerprint(), "seconds": round(time.time() - start, 1), **rec}
        golden_path(name).write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
        print(f"{name}: {rec['seconds']} s -> {golden_path(name).relative_to(ROOT)}", flush=True)


# -- make demo ---------------------------------------------------------------------------------

DEMO_COMMAND = [sys.executable, "-m", "emomm.train", "experiment=demo"]


def run_demo(run_dir: Path) -> dict[str, Any]:
    """``make demo``'s training command in ``run_dir`` with one thread; its metrics.json."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    r = subprocess.run([*DEMO_COMMAND, f"hydra.run.dir={run_dir}", f"paths.log_dir={run_dir.parent}"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"the demo run failed:\n{r.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"command": [*DEMO_COMMAND[1:], "(OMP_NUM_THREADS=1)"],
            "metrics": exact({k: v for k, v in metrics.items() if k not in VOLATILE})}


def record_demo() -> None:
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        rec = run_demo(Path(tmp) / "demo")
    fp = {**fingerprint(), "threads": 1}
    rec = {"fingerprint": fp, "seconds": round(time.time() - start, 1), **rec}
    golden_path("demo").write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
    print(f"demo: {rec['seconds']} s", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", default=list(CASES), help=f"among {list(CASES)} (default: all)")
    ap.add_argument("--demo", action="store_true", help="also record make demo's metrics (a few minutes)")
    ap.add_argument("--only-demo", action="store_true", help="record make demo's metrics only")
    args = ap.parse_args(argv)
    if not args.only_demo:
        record(args.cases)
    if args.demo or args.only_demo:
        record_demo()


if __name__ == "__main__":
    main()
