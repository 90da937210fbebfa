"""Atomic writes: a full disk (``OSError(ENOSPC)`` midway through a write) or a failing writer
leaves the previous file byte for byte and no temporary file; checkpoints go through the same
path (AtomicCheckpointIO), the SIGTERM checkpoint included."""
from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch

from emomm.utils import atomic
from emomm.utils.atomic import (atomic_open, atomic_path, atomic_savefig, atomic_write_bytes, atomic_write_json,
                                atomic_write_text, temp_path)
from emomm.utils.resume import AtomicCheckpointIO, DamagedCheckpointError


class FullDisk:
    """``open`` whose files accept ``budget`` bytes, then raise ``OSError(ENOSPC)`` (after
    writing what still fitted, as a real full disk does)."""

    def __init__(self, budget: int):
        self.budget, self.real_open = budget, builtins.open

    def __call__(self, file, mode="r", *args, **kwargs):
        f = self.real_open(file, mode, *args, **kwargs)
        if "r" in mode and "+" not in mode:
            return f
        disk, real_write = self, f.write

        def write(data):
            room = max(disk.budget, 0)
            disk.budget -= len(data)
            if len(data) > room:
                real_write(data[:room])
                f.flush()
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(data)

        f.write = write
        return f


def full_disk(monkeypatch, budget: int) -> FullDisk:
    disk = FullDisk(budget)
    monkeypatch.setattr(atomic, "open", disk, raising=False)  # atomic.py's own open()
    return disk


def only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("write", [
    lambda p: atomic_write_text(p, "new " * 5000),
    lambda p: atomic_write_bytes(p, b"new " * 5000),
    lambda p: atomic_write_json(p, {"new": ["x" * 100] * 200}),
])
def test_a_full_disk_midway_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch, write):
    path = tmp_path / "metrics.json"
    path.write_text('{"old": 1}\n')
    full_disk(monkeypatch, budget=3000)
    with pytest.raises(OSError) as err:
        write(path)
    assert err.value.errno == errno.ENOSPC
    assert f"{path} not written (No space left on device); the previous file there" in str(err.value)
    assert path.read_text() == '{"old": 1}\n'
    assert only(tmp_path) == ["metrics.json"]


def test_a_write_that_fits_replaces_the_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.csv"
    path.write_text("old\n")
    full_disk(monkeypatch, budget=10_000)
    with atomic_open(path, "w", newline="") as f:
        f.write("a,b\r\n1,2\r\n")
    assert path.read_bytes() == b"a,b\r\n1,2\r\n"
    assert only(tmp_path) == ["summary.csv"]
    atomic_write_json(path, {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}


def test_a_failing_writer_or_payload_leaves_no_file(tmp_path):
    path = tmp_path / "new.json"
    with pytest.raises(TypeError):
        atomic_write_json(path, {"x": object()})           # not serialisable: nothing written
    with pytest.raises(RuntimeError):
        with atomic_open(path, "w") as f:
            f.write("half")
            raise RuntimeError("writer bug")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert only(tmp_path) == []
    with pytest.raises(ValueError, match="'a'"):
        with atomic_open(path, "a"):
            pass


def test_temporary_names_escape_checkpoint_and_result_globs(tmp_path):
    for name in ("last.ckpt", "best.ckpt", "metrics.json", "cv_summary.json"):
        tmp = temp_path(tmp_path / name)
        assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.name.endswith(".tmp")
        tmp.touch()
    assert not list(tmp_path.glob("*.ckpt")) and not list(tmp_path.glob("**/last.ckpt"))
    assert not list(tmp_path.rglob("metrics.json")) and not list(tmp_path.glob("*.json"))
    assert tmp_path.glob("*/.*.tmp")  # the face-crop cache's cleanup pattern (prepare.py)


def test_savefig_writes_the_format_of_the_suffix(tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    atomic_savefig(fig, tmp_path / "curve.png", dpi=50)
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    full_disk(monkeypatch, budget=100)
    with pytest.raises(OSError):
        atomic_savefig(fig, tmp_path / "curve.png", dpi=50)
    plt.close(fig)
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert only(tmp_path) == ["curve.png"]


# -- checkpoints ---------------------------------------------------------------------------
class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(64, 64)

    def training_step(self, batch, _):
        return self.net(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _trainer(root: Path) -> L.Trainer:
    return L.Trainer(default_root_dir=root, max_epochs=1, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, enable_checkpointing=False, plugins=[AtomicCheckpointIO()])


def other_file_system(monkeypatch) -> None:
    """Renames across folders fail with EXDEV, as from the system's temp folder to a run
    folder on another file system, and copies go through Python's file objects."""
    real_rename, real_replace = os.rename, os.replace

    def guard(real):
        def move(src, dst, *args, **kwargs):
            if Path(src).resolve().parent != Path(dst).resolve().parent:
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            return real(src, dst, *args, **kwargs)
        return move

    monkeypatch.setattr(os, "rename", guard(real_rename))
    monkeypatch.setattr(os, "replace", guard(real_replace))
    monkeypatch.setattr(shutil, "_USE_CP_SENDFILE", False)


@pytest.mark.parametrize("room", [0.5, 1.5])  # the disk fills at half the new checkpoint / during its copy
def test_a_full_disk_never_leaves_a_truncated_checkpoint(tmp_path, monkeypatch, room):
    """The issue's case: last.ckpt truncated (45.6 of 59.2 MB) when the disk filled up."""
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 64)), batch_size=4)
    trainer = _trainer(tmp_path)
    trainer.fit(Tiny(), data)
    last = tmp_path / "checkpoints" / "last.ckpt"
    trainer.save_checkpoint(last)
    good = last.read_bytes()
    other_file_system(monkeypatch)
    monkeypatch.setattr(builtins, "open", FullDisk(int(len(good) * room)))
    trainer.fit_loop.epoch_loop._batches_that_stepped += 1  # the new checkpoint differs from the old one
    try:
        trainer.save_checkpoint(last)
    except OSError as err:
        assert "last.ckpt: checkpoint not written (No space left on device)" in str(err)
    monkeypatch.undo()
    assert only(last.parent) == ["last.ckpt"]
    state = torch.load(last, weights_only=True)     # complete: the old checkpoint or the new one
    assert (last.read_bytes() == good) == (room < 1)
    assert state["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"] == (2 if room < 1 else 3)


def test_checkpoint_io_names_a_damaged_file(tmp_path):
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:1500])                # truncated
    with pytest.raises(DamagedCheckpointError, match=r"last\.ckpt: cannot be read as a checkpoint"):
        AtomicCheckpointIO().load_checkpoint(path, weights_only=True)
    with pytest.raises(FileNotFoundError):
        AtomicCheckpointIO().load_checkpoint(tmp_path / "none.ckpt", weights_only=True)
