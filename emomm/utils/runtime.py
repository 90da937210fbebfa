"""Environment defaults and config-to-object helpers shared by train and eval."""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from emomm.utils.safe_load import CheckpointNotFoundError
from emomm.utils.zoo_files import ZooEntryError, entry_dir, is_entry, is_zoo_ref
from emomm.utils.ort import no_telemetry

log = logging.getLogger(__name__)

#: The Hydra config folder. An absolute path, because Hydra reads a relative config_path
#: as a *module* path when the entry point runs as a console script (emomm-train).
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def offline_defaults() -> None:
    """Never reach the network unless the user asked for it.

    An unset W&B mode with no API key fails the run, and a Hugging Face hub lookup hangs
    for ~47 s before failing offline, so both default to offline. Users who are online
    export WANDB_MODE=online / HF_HUB_OFFLINE=0 themselves. ONNX Runtime's telemetry (files
    under ``~/.cache`` written on import, and uploads) is switched off the same way
    (:mod:`emomm.utils.ort`; ``ORT_DISABLE_TELEMETRY=0`` turns it back on).
    """
    no_telemetry()
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@contextlib.contextmanager
def private_library_caches() -> Iterator[None]:
    """For the commands documented to store nothing (``emomm.live``, ``emomm.serve``): keep
    library caches out of the user's home while the block (loading the model) runs.

    Loading a checkpoint imports Lightning, which imports torchmetrics, which imports
    matplotlib, which writes its font list under ``~/.cache/matplotlib`` (and creates
    ``~/.config/matplotlib``) when none is there. Unless ``MPLCONFIGDIR`` is set, it points
    at a private temporary folder for the block, removed after it (matplotlib keeps the font
    list in memory; the scan costs ~0.3 s per start). Removed at the block's end rather than
    at exit, since uvicorn ends a server on SIGTERM by re-raising the signal: no atexit runs.
    """
    if "MPLCONFIGDIR" in os.environ:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="emomm-mpl-") as folder:
        os.environ["MPLCONFIGDIR"] = folder
        try:
            yield
        finally:
            del os.environ["MPLCONFIGDIR"]


def native_bf16(accelerator: str) -> bool:
    """Whether ``accelerator`` computes bf16 in hardware: a CUDA device with bf16, or a CPU
    with AVX512-BF16 or AMX. Elsewhere oneDNN emulates bf16, and a bf16-mixed ResNet-18 step
    took 69 s instead of 3.3 s in fp32 (AMD EPYC Zen 3, 2 threads)."""
    import torch
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(trainer_cfg: DictConfig) -> str:
    """``precision: auto`` -> ``bf16-mixed`` where the hardware computes bf16 natively, else
    ``32-true``; the result is written back into the config, so ``config.yaml`` records what ran.
    An explicit ``bf16-mixed`` is kept, with a warning where it is emulated."""
    accelerator = str(trainer_cfg.get("accelerator", "cpu"))
    precision = str(trainer_cfg.get("precision", "32-true"))
    if precision == "auto":
        precision = "bf16-mixed" if native_bf16(accelerator) else "32-true"
        log.info("trainer.precision=auto -> %s", precision)
        with open_dict(trainer_cfg):
            trainer_cfg.precision = precision
    elif precision.startswith("bf16") and not native_bf16(accelerator):
        log.warning("trainer.precision=%s on hardware without native bf16 (no AVX512-BF16/AMX): "
                    "bf16 is emulated and ~20x slower than fp32; use trainer.precision=auto "
                    "or 32-true", precision)
    return precision


def instantiate_dict(cfg: DictConfig | None) -> list[Any]:
    """Build every ``_target_`` entry of a group such as ``callbacks`` or ``logger``;
    entries set to null are switched off."""
    if not cfg:
        return []
    return [instantiate(c) for _, c in cfg.items() if c is not None and "_target_" in c]


def to_plain(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, (DictConfig, ListConfig)) else cfg


def resolve_ckpts(value: Any, log_dir: str | Path, backend: str = "torch") -> Path | list[Path]:
    """An entry point's ``ckpt_path``: a ``.ckpt``, ``latest`` or ``zoo:NAME`` (``backend=torch``
    or ``auto``), an export folder or file (``backend=onnxruntime``), or a list of them, an
    ensemble that predicts with the mean of their probabilities (torch or auto)."""
    value = to_plain(value)
    if backend == "auto":
        backend = "torch"   # a checkpoint: emomm.inference.onnx_cache exports it when it can
    if isinstance(value, (list, tuple)):
        if backend != "torch":
            raise ValueError("ckpt_path=[...] (an ensemble of checkpoints) needs backend=torch")
        return [resolve_ckpt(str(v), log_dir) for v in value]
    if backend != "torch" and is_zoo_ref(str(value)):
        raise ValueError(f"ckpt_path={value} with backend={backend}: a zoo model runs with backend=torch, or "
                         f"export it first: python -m emomm.export ckpt_path={value}")
    return resolve_ckpt(str(value), log_dir) if backend == "torch" else Path(str(value)).expanduser()


def set_compute_threads(threads: int | None) -> None:
    """``threads`` torch (and OpenMP, for libraries that start later) compute threads; 0 or
    None: leave the defaults (all cores). On a small shared CPU one thread per inference
    beats two that stall each other."""
    if threads:
        import torch
        torch.set_num_threads(int(threads))
        os.environ.setdefault("OMP_NUM_THREADS", str(int(threads)))


def resolve_ckpt(path: str, log_dir: str | Path) -> Path:
    """``latest`` -> the newest ``best.ckpt`` of any run under ``log_dir``; ``zoo:NAME`` -> the
    folder of that model-zoo entry (:mod:`emomm.utils.zoo_files`: every checkpoint loader
    reads it, checksums checked); else the path (a file, or a zoo entry's folder)."""
    if is_zoo_ref(path):
        try:
            return entry_dir(path)
        except ZooEntryError as err:
            raise CheckpointNotFoundError(str(err)) from None
    if path == "latest":
        found = sorted(Path(log_dir).glob("**/checkpoints/best.ckpt"),
                       key=lambda p: p.stat().st_mtime)
        if not found:
            raise FileNotFoundError(f"ckpt_path=latest: no checkpoints/best.ckpt under {log_dir}; "
                                    "train a model first (python -m emomm.train)")
        log.info("ckpt_path=latest: %s (the newest of %d checkpoints/best.ckpt under %s)", found[-1], len(found), log_dir)
        return found[-1]
    p = Path(path).expanduser()
    if not (p.is_file() or is_entry(p)):
        raise CheckpointNotFoundError(f"ckpt_path={p} does not exist; give a .ckpt file, ckpt_path=latest or "
                                      "ckpt_path=zoo:NAME (python -m emomm.zoo lists the models)")
    return p


def source_commit() -> str:
    """The git commit of the emomm checkout running now (``+dirty`` with uncommitted changes
    to tracked files), or ``unknown`` outside a git checkout (an installed wheel)."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")
