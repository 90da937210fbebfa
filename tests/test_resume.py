"""Interrupted training: kill -9 mid-epoch then ``ckpt_path=last`` gives the uninterrupted
run's metrics exactly; SIGTERM saves a checkpoint, exits with the documented code, and that
checkpoint resumes; ``ckpt_path=last`` resolution."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import pytest

from emomm.data.sampling import EpochSeededSampler
from emomm.utils.resume import SIGTERM_EXIT, resolve_resume

REPO = Path(__file__).resolve().parents[1]
# A tiny face model on the synthetic data: 8 batches per epoch, 3 epochs, no early stop.
TINY = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=32",
        "data.n_train=64", "data.n_val=16", "data.n_test=16", "data.batch_size=8", "trainer.max_epochs=3",
        "callbacks.early_stopping=null", "logger=csv", "+trainer.enable_progress_bar=false"]


class SlowAfterFirstEpoch(L.Callback):
    """From the second epoch on, touch ``marker`` at each batch and sleep, so the test can
    kill the run in the middle of an epoch (after the first epoch's checkpoint)."""

    def __init__(self, marker: str, sleep_s: float = 0.5):
        self.marker, self.sleep_s = marker, sleep_s

    def on_train_batch_end(self, trainer, *args):
        if trainer.current_epoch >= 1:
            Path(self.marker).touch()
            time.sleep(self.sleep_s)


def _cmd(log_dir: Path, extra=(), base=TINY) -> list[str]:
    return [sys.executable, "-m", "emomm.train", *base, f"paths.log_dir={log_dir}", *extra]


def _tiny_fer(fer_csv: Path) -> list[str]:
    """TINY on a FER2013 CSV in its published format (70 training faces: 9 batches an epoch)."""
    return [o for o in TINY if not o.startswith("data.n_")] + ["data=fer2013", f"data.root={fer_csv.parent}"]


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _metrics(log_dir: Path) -> list[dict]:
    runs = sorted((log_dir / "train" / "runs").glob("*/metrics.json"), key=lambda p: p.stat().st_mtime)
    return [json.loads(p.read_text()) for p in runs]


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"training ended (rc {proc.returncode}) before {path} appeared:\n"
                                 + proc.stderr.read()[-3000:])
        if time.time() > deadline:
            proc.kill()
            raise AssertionError(f"{path} did not appear in {timeout} s")
        time.sleep(0.2)


def test_sampler_order_depends_only_on_seed_and_epoch():
    a = EpochSeededSampler(50, seed=3)
    first = list(a)
    a.set_epoch(1)
    second = list(a)
    assert sorted(first) == list(range(50)) and first != second
    b = EpochSeededSampler(50, seed=3, epoch_fn=lambda: 1)
    b.set_epoch(7)  # epoch_fn (the trainer's epoch) wins over a stale set_epoch
    assert list(b) == second
    assert list(EpochSeededSampler(50, seed=4)) != first


def test_resolve_last_picks_the_newest_run_of_the_task(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoints/last.ckpt"):
        resolve_resume("last", tmp_path, "train")
    old = tmp_path / "train/runs/a/checkpoints/last.ckpt"
    new = tmp_path / "train/runs/b/checkpoints/last.ckpt"
    other = tmp_path / "other/runs/c/checkpoints/last.ckpt"
    for i, p in enumerate((old, new, other)):
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x")
        os.utime(p, (1000 + i, 1000 + i))
    assert resolve_resume("last", tmp_path, "train") == str(new)
    assert resolve_resume(None, tmp_path) is None
    with pytest.raises(FileNotFoundError, match="ckpt_path=last"):
        resolve_resume(str(tmp_path / "nope.ckpt"), tmp_path)


@pytest.mark.slow  # three tiny trainings as subprocesses: ~1-2 min on the loaded 2-core box
def test_kill9_mid_epoch_then_resume_equals_uninterrupted(tmp_path, fer_csv):
    """On a real-format dataset (a FER2013 CSV), not the in-memory synthetic data."""
    base = _tiny_fer(fer_csv)
    # A: uninterrupted.
    a_logs = tmp_path / "a"
    done = subprocess.run(_cmd(a_logs, base=base), capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    (a,) = _metrics(a_logs)

    # B: SIGKILL in the middle of the second epoch, after the first epoch's last.ckpt.
    b_logs, marker = tmp_path / "b", tmp_path / "mid_epoch"
    slow = ["+callbacks.slow._target_=tests.test_resume.SlowAfterFirstEpoch", f"+callbacks.slow.marker={marker}"]
    proc = subprocess.Popen(_cmd(b_logs, slow, base), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_env())
    _wait_for(marker, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert _metrics(b_logs) == []                        # it never finished
    last = next((b_logs / "train" / "runs").glob("*/checkpoints/last.ckpt"))
    assert last.is_file()

    # Same command plus ckpt_path=last.
    resumed = subprocess.run(_cmd(b_logs, ["ckpt_path=last"], base), capture_output=True, text=True, env=_env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (b,) = _metrics(b_logs)
    assert b["epochs"] == a["epochs"] == 3
    assert b["best_val"] == a["best_val"]
    assert b["test"] == a["test"]
    # Metrics of a tiny model can tie by chance; the weights after the last epoch cannot.
    import torch
    wa = torch.load(next((a_logs / "train" / "runs").glob("*/checkpoints/last.ckpt")), weights_only=True)
    wb = torch.load(last, weights_only=True)           # the resumed run kept writing there
    assert wa["epoch"] == wb["epoch"] == 2
    assert all(torch.equal(wa["state_dict"][k], wb["state_dict"][k]) for k in wa["state_dict"])


@pytest.mark.slow  # two tiny trainings as subprocesses
def test_sigterm_saves_a_checkpoint_that_resumes(tmp_path):
    logs, marker = tmp_path / "logs", tmp_path / "mid_epoch"
    slow = ["+callbacks.slow._target_=tests.test_resume.SlowAfterFirstEpoch", f"+callbacks.slow.marker={marker}"]
    proc = subprocess.Popen(_cmd(logs, slow), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_env())
    _wait_for(marker, proc)
    before = next((logs / "train" / "runs").glob("*/checkpoints/last.ckpt")).stat().st_mtime_ns
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == SIGTERM_EXIT, err[-3000:]
    last = next((logs / "train" / "runs").glob("*/checkpoints/last.ckpt"))
    assert last.stat().st_mtime_ns > before                      # rewritten at the SIGTERM
    assert "SIGTERM: saved" in (last.parent.parent / "train.log").read_text()
    import torch
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert state["epoch"] == 1 and state["emomm_best_val"]
    resumed = subprocess.run(_cmd(logs, ["ckpt_path=last"]), capture_output=True, text=True, env=_env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (m,) = _metrics(logs)
    assert m["epochs"] == 3 and 0 <= m["test"]["acc"] <= 1


def test_text_buckets_follow_the_trainer_epoch():
    """The length-bucketed text sampler, like the plain one, orders an epoch by (seed, epoch)
    alone when it is told the trainer's epoch: a resumed epoch 1 equals epoch 1 of a run."""
    import torch

    from emomm.data.text import LengthBucketBatchSampler
    lengths = list(np.random.default_rng(0).integers(1, 50, 40))
    counting = LengthBucketBatchSampler(lengths, 4, shuffle=True, seed=5)
    epochs = [list(counting), list(counting)]          # epochs 0 and 1 of an uninterrupted run
    resumed = LengthBucketBatchSampler(lengths, 4, shuffle=True, seed=5, epoch_fn=lambda: 1)
    assert epochs[0] != epochs[1] and list(resumed) == epochs[1]
    list(resumed)
    a = torch.rand(3)
    list(resumed)
    assert torch.equal(torch.rand(3), a)                 # the epoch's global RNG state repeats
