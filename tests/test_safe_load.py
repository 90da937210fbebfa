"""Loading a checkpoint or a cache file never runs code from it: a pickle whose
``__reduce__`` would create a marker file is refused by every loader, and the marker never
appears."""
from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


class Evil:
    """Unpickling this calls ``os.system("touch MARKER")``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_ckpt(path: Path, marker: Path) -> Path:
    # A plausible Lightning checkpoint whose hyper_parameters hold the payload.
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {"x": Evil(marker)},
                "pytorch-lightning_version": "2.6.0", "epoch": 0, "global_step": 0}, path)
    return path


def test_the_payload_is_real(tmp_path):
    """The crafted file does run code with an unsafe load (so the refusals below mean something)."""
    marker = tmp_path / "pwned"
    ckpt = _evil_ckpt(tmp_path / "evil.ckpt", marker)
    torch.load(ckpt, weights_only=False)
    assert marker.exists()


def test_checkpoint_loaders_refuse_a_malicious_pickle(tmp_path):
    from emomm import Predictor
    from emomm.models.module import EmotionModule
    from emomm.utils.safe_load import UnsafeCheckpointError, load_checkpoint

    marker = tmp_path / "pwned"
    ckpt = _evil_ckpt(tmp_path / "evil.ckpt", marker)
    with pytest.raises(UnsafeCheckpointError, match=re.escape(str(ckpt))):
        load_checkpoint(ckpt)
    with pytest.raises(UnsafeCheckpointError):
        EmotionModule.load_from_checkpoint(ckpt)
    with pytest.raises(pickle.UnpicklingError):  # the Lightning path with encoders given
        EmotionModule.load_from_checkpoint(ckpt, encoders={})
    with pytest.raises(UnsafeCheckpointError):
        Predictor.from_checkpoint(ckpt)
    assert not marker.exists()


@pytest.mark.slow  # a CLI start (~20-40 s on the loaded 2-core box)
def test_the_environment_cannot_turn_the_refusal_off(tmp_path):
    """``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` flips torch.load's *default*; emomm passes
    ``weights_only=True`` explicitly, so the eval CLI still refuses the file."""
    marker = tmp_path / "pwned"
    ckpt = _evil_ckpt(tmp_path / "evil.ckpt", marker)
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "emomm.eval", f"ckpt_path={ckpt}",
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "refused to load" in proc.stderr, proc.stderr[-2000:]
    assert not marker.exists()


def test_face_crop_cache_refuses_a_pickled_entry(tmp_path):
    """A cache entry is an .npz read with allow_pickle=False: an object array inside (a
    pickle) is refused, and ``load`` deletes the bad entry so it is rebuilt."""
    from emomm.faces.cache import CropCache, load_entry

    marker = tmp_path / "pwned"
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"x")
    cache = CropCache(tmp_path / "cache", {"size": 8})
    entry = cache.path(src)
    entry.parent.mkdir(parents=True)
    arrays = {k: np.zeros(1) for k in ("crops", "boxes", "scores", "landmarks", "found", "frame_index", "times")}
    arrays["meta"] = np.array([Evil(marker)], dtype=object)
    with open(entry, "wb") as f:
        np.savez(f, **arrays)
    with zipfile.ZipFile(entry) as z:  # the payload really is a pickle inside the archive
        assert b"system" in z.read("meta.npy")
    with pytest.raises(ValueError, match="allow_pickle"):
        load_entry(entry)
    assert cache.load(src) is None and not entry.exists()
    assert not marker.exists()


def test_no_unsafe_load_in_the_code():
    """Every torch.load in emomm passes weights_only=True; np.load never allows pickles;
    no pickle.load / joblib / torch.jit.load of user files."""
    bad = []
    for f in (REPO / "emomm").rglob("*.py"):
        text = f.read_text()
        for line in text.splitlines():  # every call here fits on one line
            if re.search(r"torch\.load\(\S", line) and "weights_only=True" not in line:
                bad.append(f"{f}: {line.strip()}")
            if re.search(r"np\.load\(\S", line) and "allow_pickle=False" not in line:
                bad.append(f"{f}: {line.strip()}")
        for pat in (r"pickle\.loads?\(", r"joblib\.load", r"dill\.load"):
            bad += [f"{f}: {pat}" for _ in re.finditer(pat, text)]
    assert not bad, bad
