"""Interrupted training resumes exactly: a run stopped anywhere (SIGTERM mid-epoch, at an
epoch's end or during validation; kill -9) and resumed with ``ckpt_path=last`` ends with the
weights and metrics of a run never stopped; a damaged checkpoint is named and the newest
good one of the run is used; ``ckpt_path=last`` resolution; the position-seeded sampler."""
from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from omegaconf import open_dict

from emomm.data.core.sampling import EpochSeededSampler, ResumableDataLoader, SeededSamples
from emomm.utils.resume import SIGTERM_EXIT, TRAINING_STATE, DamagedCheckpointError, resolve_resume
from tests.conftest import make_cfg

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


def test_a_resumed_epoch_continues_the_order_and_the_sample_seeds():
    full = list(EpochSeededSampler(20, seed=3, epoch_fn=lambda: 2, seed_samples=True))
    assert [i for i, _ in full] == list(EpochSeededSampler(20, seed=3, epoch_fn=lambda: 2))
    assert len({s for _, s in full}) == 20                          # one seed per position
    resumed = EpochSeededSampler(20, seed=3, epoch_fn=lambda: 2, seed_samples=True)
    resumed.resume_at(2, 8)
    assert list(resumed) == full[8:]
    assert list(resumed) == full                                    # once only: the next pass is whole
    other = EpochSeededSampler(20, seed=3, epoch_fn=lambda: 3, seed_samples=True)
    other.resume_at(2, 8)                                           # an epoch-end checkpoint of epoch 2
    assert len(list(other)) == 20
    weighted = EpochSeededSampler(20, seed=3, epoch_fn=lambda: 2, weights=[0.0] * 10 + [1.0] * 10)
    assert all(i >= 10 for i in weighted) and len(list(weighted)) == 20


class Noisy(torch.utils.data.Dataset):
    """Each sample is augmentation noise drawn from the global RNGs, as the datasets' transforms do."""

    def __init__(self, n: int = 12):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.tensor([float(i), torch.rand(()).item(), float(np.random.rand())])


@pytest.mark.parametrize("workers", [0, 2])
def test_samples_depend_on_their_position_alone_in_any_process(workers):
    """The loader's state is the trainer's position; loading it skips the batches done, and
    every sample, in the main process or a worker, gets the noise of its position."""
    position = {"epoch": 1, "batches": 0}

    def loader(batch_size=4):
        sampler = EpochSeededSampler(12, seed=5, epoch_fn=lambda: position["epoch"], seed_samples=True)
        return ResumableDataLoader(SeededSamples(Noisy()), batch_size=batch_size, sampler=sampler,
                                   num_workers=workers, progress_fn=lambda: (position["epoch"], position["batches"]))

    whole = torch.cat(list(loader()))
    torch.manual_seed(123)                                          # a resumed process's RNGs differ
    position["batches"] = 2
    resumed = loader()
    resumed.load_state_dict(loader().state_dict())
    assert loader().state_dict() == {"epoch": 1, "batches": 2, "batch_size": 4, "samples": 12}
    assert torch.equal(torch.cat(list(resumed)), whole[8:])
    changed = loader(batch_size=3)                                  # another batch size: no skip, a warning
    changed.load_state_dict({"epoch": 1, "batches": 2, "batch_size": 4, "samples": 12})
    assert changed.sampler._resume is None


def tiny_checkpoint(path: Path, step: int = 1) -> Path:
    """A file with a training checkpoint's keys (enough for resolve_resume's check)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: {} for k in TRAINING_STATE} | {"epoch": 0, "global_step": step}, path)
    return path


def test_resolve_last_picks_the_newest_run_of_the_task(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoints/last.ckpt"):
        resolve_resume("last", tmp_path, "train")
    old = tmp_path / "train/runs/a/checkpoints/last.ckpt"
    new = tmp_path / "train/runs/b/checkpoints/last.ckpt"
    other = tmp_path / "other/runs/c/checkpoints/last.ckpt"
    for i, p in enumerate((old, new, other)):
        tiny_checkpoint(p)
        os.utime(p, (1000 + i, 1000 + i))
    (new.parent / ".last.0123abcd.999.ckpt.tmp").write_bytes(b"half a checkpoint")  # a write in progress
    assert resolve_resume("last", tmp_path, "train") == str(new)
    assert resolve_resume(None, tmp_path) is None
    with pytest.raises(FileNotFoundError, match="ckpt_path=last"):
        resolve_resume(str(tmp_path / "nope.ckpt"), tmp_path)


def test_a_damaged_last_checkpoint_is_named_and_the_run_falls_back(tmp_path, caplog):
    run = tmp_path / "train/runs/b/checkpoints"
    last, best = tiny_checkpoint(run / "last.ckpt", 8), tiny_checkpoint(run / "best.ckpt", 4)
    os.utime(best, (1000, 1000))
    last.write_bytes(last.read_bytes()[: last.stat().st_size * 3 // 4])          # the full disk's truncation
    with caplog.at_level(logging.WARNING, logger="emomm.utils.resume"):
        assert resolve_resume("last", tmp_path) == str(best)
    assert f"{last} is damaged" in caplog.text and f"resuming from {best} instead" in caplog.text

    with pytest.raises(DamagedCheckpointError, match=rf"ckpt_path={last}: cannot resume from it: .*"
                                                     rf"ckpt_path={best}"):
        resolve_resume(str(last), tmp_path)                                      # explicit: refused, told
    best.write_bytes(b"")
    older = tiny_checkpoint(tmp_path / "train/runs/a/checkpoints/last.ckpt")
    os.utime(older, (500, 500))
    with pytest.raises(DamagedCheckpointError) as err:
        resolve_resume("last", tmp_path)
    msg = str(err.value)
    assert str(last) in msg and "no other checkpoint" in msg and "without ckpt_path" in msg
    assert f"move {last.parent.parent} away" in msg and str(older) in msg


class Gadget:
    """Any class: a checkpoint holding one needs an unrestricted (code-running) unpickler."""


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"),
    (b"PK\x03\x04 a zip cut short", r"unreadable, .* \(20 bytes: truncated or not a checkpoint\?\)"),
    ({"state_dict": {}}, r"not a training checkpoint of emomm.train: it lacks \['optimizer_states'"),
    ({"state_dict": {}, "x": Gadget()}, r"refused: .*holds objects other than weights"),
])
def test_checkpoint_problems_are_told_in_one_line(tmp_path, content, reason):
    path = tmp_path / "last.ckpt"
    path.write_bytes(content) if isinstance(content, bytes) else torch.save(content, path)
    with pytest.raises(DamagedCheckpointError, match=rf"ckpt_path={path}: cannot resume from it: {reason}"):
        resolve_resume(str(path), tmp_path)
    assert path.exists()


# -- training stopped anywhere, resumed ---------------------------------------------------
# TINY learning fast enough that the best epoch and the metrics move between epochs.
FAST = [*TINY, "model.optimizer.lr=0.01"]


class Killed(Exception):
    """A run dying without saving anything (kill -9 in a subprocess; an exception here)."""


class Interrupt(L.Callback):
    """At training batch ``batch`` of ``epoch`` (``where=train``, after the batch) or at the
    start of validation batch ``batch`` (``where=val``): send this process SIGTERM, or die."""

    def __init__(self, epoch: int, batch: int, where: str = "train", how: str = "sigterm"):
        self.epoch, self.batch, self.where, self.how = epoch, batch, where, how

    def _hit(self, trainer, batch_idx, where):
        if where == self.where and (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            if self.how == "kill":
                raise Killed
            os.kill(os.getpid(), signal.SIGTERM)   # Lightning's handler: stop at the next boundary

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._hit(trainer, batch_idx, "train")

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self._hit(trainer, batch_idx, "val")


def train_here(log_dir: Path, name: str, extra=(), interrupt: dict | None = None) -> dict | None:
    """``python -m emomm.train FAST paths.log_dir=log_dir [extra]`` in this process, its run folder
    ``log_dir/train/runs/name``; None when it was interrupted."""
    from emomm.train import train
    run = log_dir / "train" / "runs" / name
    run.mkdir(parents=True)
    cfg = make_cfg("train", run, [*FAST, *extra])
    with open_dict(cfg):
        cfg.paths.log_dir = str(log_dir)
        if interrupt:
            cfg.callbacks.interrupt = {"_target_": "tests.test_resume.Interrupt", **interrupt}
    try:
        return train(cfg)
    except SystemExit as stop:
        assert stop.code == SIGTERM_EXIT
    except Killed:
        pass
    return None


def final_state(log_dir: Path, name: str) -> dict:
    return torch.load(log_dir / "train" / "runs" / name / "checkpoints" / "last.ckpt", weights_only=True)


def val_history(log_dir: Path, *names: str) -> dict[int, str]:
    """``{epoch: val/uar}`` from the CSV logs of the runs ``names`` (an interrupted run and its resumption)."""
    history: dict[int, str] = {}
    for name in names:
        for f in (log_dir / "train" / "runs" / name).glob("csv/**/metrics.csv"):
            for row in csv.DictReader(f.open()):
                if row.get("val/uar"):
                    assert history.setdefault(int(row["epoch"]), row["val/uar"]) == row["val/uar"]
    return history


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    logs = tmp_path_factory.mktemp("uninterrupted")
    summary = train_here(logs, "a")
    return summary, final_state(logs, "a"), val_history(logs, "a")


def assert_same_run(summary: dict, state: dict, history: dict, reference) -> None:
    ref_summary, ref_state, ref_history = reference
    assert history == ref_history and len(history) == 3          # every epoch validated, to the same values
    assert summary["epochs"] == ref_summary["epochs"] == 3
    assert summary["best_val"] == ref_summary["best_val"]
    assert summary["test"] == ref_summary["test"]
    assert state["global_step"] == ref_state["global_step"] == 24
    assert state["state_dict"].keys() == ref_state["state_dict"].keys()
    assert all(torch.equal(state["state_dict"][k], ref_state["state_dict"][k]) for k in state["state_dict"])
    assert all(torch.equal(a["exp_avg"], b["exp_avg"]) for a, b in zip(state["optimizer_states"][0]["state"].values(),
                                                                       ref_state["optimizer_states"][0]["state"].values()))


# (interrupt, global step of the checkpoint it leaves, overrides of the interrupted and the
# resumed run): SIGTERM stops after the current training batch (after validation when it comes
# during one or right before one); kill -9 leaves the last epoch-end checkpoint. With DataLoader
# workers the samples are loaded in other processes, yet the run is the same as without.
STOPS = {
    "sigterm_mid_epoch": ({"epoch": 1, "batch": 3}, 12, []),
    "sigterm_early_first_epoch": ({"epoch": 0, "batch": 0}, 1, []),
    "sigterm_at_epoch_end": ({"epoch": 0, "batch": 7}, 8, []),
    "sigterm_during_validation": ({"epoch": 2, "batch": 0, "where": "val"}, 24, []),   # the best epoch's
    "sigterm_in_last_epoch": ({"epoch": 2, "batch": 5}, 22, []),
    "kill_mid_epoch": ({"epoch": 1, "batch": 3, "how": "kill"}, 8, []),
    "sigterm_mid_epoch_with_workers": ({"epoch": 1, "batch": 3}, 12, ["data.num_workers=2"]),
}


@pytest.mark.parametrize("stop", [pytest.param(k, marks=() if k == "sigterm_mid_epoch" else pytest.mark.slow)
                                  for k in STOPS])
def test_a_run_stopped_anywhere_resumes_to_the_same_weights_and_metrics(tmp_path, uninterrupted, stop, caplog):
    interrupt, step, extra = STOPS[stop]
    assert train_here(tmp_path, "b", extra, interrupt) is None
    assert final_state(tmp_path, "b")["global_step"] == step
    with caplog.at_level(logging.INFO):
        resumed = train_here(tmp_path, "resumed", [*extra, "ckpt_path=last"])
    assert_same_run(resumed, final_state(tmp_path, "b"), val_history(tmp_path, "b", "resumed"),  # b's checkpoints:
                    uninterrupted)                                                            # resumed wrote there
    assert "resuming from" in caplog.text and "not resumable" not in caplog.text
    if step % 8:
        assert f"position {step % 8 * 8} of its training order" in caplog.text


@pytest.mark.slow  # an interrupted and a resumed training
def test_a_truncated_last_checkpoint_resumes_from_the_best_one(tmp_path, uninterrupted, caplog):
    """The full disk of the issue before writes were atomic: last.ckpt cut at 3/4. The resume
    names it, takes best.ckpt (an earlier epoch) and still ends as the uninterrupted run."""
    assert train_here(tmp_path, "b", interrupt={"epoch": 2, "batch": 2, "how": "kill"}) is None
    ckpts = tmp_path / "train" / "runs" / "b" / "checkpoints"
    last = ckpts / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 16
    last.write_bytes(last.read_bytes()[: last.stat().st_size * 3 // 4])
    with caplog.at_level(logging.WARNING):
        resumed = train_here(tmp_path, "resumed", ["ckpt_path=last"])
    assert f"{last} is damaged" in caplog.text and f"resuming from {ckpts / 'best.ckpt'} instead" in caplog.text
    assert_same_run(resumed, final_state(tmp_path, "b"), val_history(tmp_path, "b", "resumed"), uninterrupted)


def test_the_sigterm_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    """Every checkpoint of a run, the SIGTERM one included, goes through AtomicCheckpointIO."""
    from emomm.utils.resume import AtomicCheckpointIO
    saved = []
    real = AtomicCheckpointIO.save_checkpoint
    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint",
                        lambda self, ckpt, path, *a, **kw: saved.append((Path(path).name, ckpt["global_step"]))
                        or real(self, ckpt, path, *a, **kw))
    assert train_here(tmp_path, "b", ["trainer.max_epochs=1"], {"epoch": 0, "batch": 2}) is None
    assert saved == [("last.ckpt", 3)]


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
    wa = torch.load(next((a_logs / "train" / "runs").glob("*/checkpoints/last.ckpt")), weights_only=True)
    wb = torch.load(last, weights_only=True)           # the resumed run kept writing there
    assert wa["epoch"] == wb["epoch"] == 2
    assert all(torch.equal(wa["state_dict"][k], wb["state_dict"][k]) for k in wa["state_dict"])


@pytest.mark.slow  # three tiny trainings as subprocesses
def test_sigterm_from_outside_mid_epoch_then_resume_equals_uninterrupted(tmp_path):
    """``kill -TERM`` (SLURM's preemption signal) in the middle of the second epoch, then the
    same command plus ``ckpt_path=last``: the uninterrupted run's metrics and weights."""
    a_logs = tmp_path / "a"
    done = subprocess.run(_cmd(a_logs), capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    (a,) = _metrics(a_logs)

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
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert state["epoch"] == 1 and 8 < state["global_step"] < 16 and state["emomm_best_val"]
    resumed = subprocess.run(_cmd(logs, ["ckpt_path=last"]), capture_output=True, text=True, env=_env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "not resumable" not in resumed.stderr
    (m,) = _metrics(logs)
    assert m["epochs"] == a["epochs"] == 3
    assert m["best_val"] == a["best_val"] and m["test"] == a["test"]
    wa = torch.load(next((a_logs / "train" / "runs").glob("*/checkpoints/last.ckpt")), weights_only=True)
    wb = torch.load(last, weights_only=True)
    assert all(torch.equal(wa["state_dict"][k], wb["state_dict"][k]) for k in wa["state_dict"])


def test_text_buckets_follow_the_trainer_epoch():
    """The length-bucketed text sampler, like the plain one, orders an epoch by (seed, epoch)
    alone when it is told the trainer's epoch: a resumed epoch 1 equals epoch 1 of a run."""
    from emomm.data.pipelines.text_data import LengthBucketBatchSampler
    lengths = list(np.random.default_rng(0).integers(1, 50, 40))
    counting = LengthBucketBatchSampler(lengths, 4, shuffle=True, seed=5)
    epochs = [list(counting), list(counting)]          # epochs 0 and 1 of an uninterrupted run
    resumed = LengthBucketBatchSampler(lengths, 4, shuffle=True, seed=5, epoch_fn=lambda: 1)
    assert epochs[0] != epochs[1] and list(resumed) == epochs[1]
    list(resumed)
    a = torch.rand(3)
    list(resumed)
    assert torch.equal(torch.rand(3), a)                 # the epoch's global RNG state repeats


def test_text_buckets_resume_after_the_batches_done():
    """Length buckets are batches of their own: the loader's state counts batches, and the
    resumed epoch gives the rest of the same batches with the same per-sample seeds."""
    from emomm.data.pipelines.text_data import LengthBucketBatchSampler
    lengths = list(np.random.default_rng(0).integers(1, 50, 40))

    def loader(batches_done=0):
        sampler = LengthBucketBatchSampler(lengths, 4, shuffle=True, seed=5, epoch_fn=lambda: 1, seed_samples=True)
        return ResumableDataLoader(SeededSamples(Noisy(40)), batch_sampler=sampler,
                                   progress_fn=lambda: (1, batches_done))

    whole = [b.tolist() for b in loader()]
    assert [[int(x[0]) for x in b] for b in whole] == list(LengthBucketBatchSampler(lengths, 4, True, 5,
                                                                                   epoch_fn=lambda: 1))
    resumed = loader()
    resumed.load_state_dict(loader(batches_done=3).state_dict())
    assert [b.tolist() for b in resumed] == whole[3:]

