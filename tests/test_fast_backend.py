"""Fast by default (issue 41): ``backend=auto`` runs a checkpoint on ONNX Runtime through an
export made once, cached by the checkpoint's SHA-256 and parity-checked; a refused export and
a missing onnxruntime fall back to PyTorch with a one-line reason."""
from __future__ import annotations

import os

import sys

import numpy as np
import pytest

import emomm.inference.onnx_cache as onnx_cache
from emomm.inference.export_graph import ExportError
from emomm.inference.onnx_cache import CACHE_ENV, REFUSED, cache_root, checkpoint_key
from emomm.inference.onnx_runner import OnnxRunner
from emomm.inference.predictor import Predictor
from emomm.inference.runner import TorchRunner
from tests.serve_helpers import tiny_face_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_face_checkpoint(tmp_path_factory.mktemp("fast"))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


CROPS = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)


def _no_export(*args, **kwargs):
    raise AssertionError("exported again: the cache was not used")


def test_auto_runs_the_cached_parity_checked_onnx_export(ckpt, cache, monkeypatch):
    fast = Predictor.from_checkpoint(ckpt, backend="auto", detector="none")
    assert fast.backend == "onnxruntime" and isinstance(fast.runner, OnnxRunner), fast.backend_note
    assert cache_root() == cache and [p.name for p in cache.iterdir()] == [checkpoint_key(ckpt)]
    assert (cache / checkpoint_key(ckpt) / "model.json").is_file()
    torch_p = Predictor.from_checkpoint(ckpt, backend="torch", detector="none")
    np.testing.assert_allclose(fast.classify_faces(CROPS), torch_p.classify_faces(CROPS), atol=1e-4)
    # a second start reuses the export: nothing is exported again
    monkeypatch.setattr(onnx_cache, "export", _no_export)
    again = Predictor.from_checkpoint(ckpt, backend="auto", detector="none")
    assert again.backend == "onnxruntime" and "cached" in again.backend_note
    # backend=torch stays selectable
    assert isinstance(torch_p.runner, TorchRunner) and torch_p.backend == "torch"


def test_the_cache_key_follows_the_weights_not_the_path(ckpt, tmp_path):
    copy = tmp_path / "copy.ckpt"
    copy.write_bytes(ckpt.read_bytes())
    assert checkpoint_key(copy) == checkpoint_key(ckpt)
    changed = tmp_path / "changed.ckpt"
    changed.write_bytes(ckpt.read_bytes() + b"\0")
    assert checkpoint_key(changed) != checkpoint_key(ckpt)


def test_without_onnxruntime_auto_falls_back_to_pytorch_saying_why(ckpt, cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # `import onnxruntime` raises ImportError
    monkeypatch.setattr(onnx_cache, "export", _no_export)
    p = Predictor.from_checkpoint(ckpt, backend="auto", detector="none")
    assert p.backend == "torch" and isinstance(p.runner, TorchRunner)
    assert "onnxruntime is not installed" in p.backend_note and "\n" not in p.backend_note
    assert not cache.exists()
    assert p.classify_faces(CROPS).shape == (3, len(p.label_names))


def test_a_refused_export_falls_back_and_is_not_retried(ckpt, cache, monkeypatch, capfd):
    def refuse(*args, **kwargs):
        os.write(1, b"Torch IR graph at exception: graph(...)\n")   # as the TorchScript exporter does
        os.write(2, b"a C++ warning\n")
        raise ExportError("the exported model.onnx disagrees with the PyTorch model on batch=3:\nmax diff 0.1")
    monkeypatch.setattr(onnx_cache, "export", refuse)
    capfd.readouterr()
    p = Predictor.from_checkpoint(ckpt, backend="auto", detector="none")
    out, err = capfd.readouterr()
    assert "Torch IR graph" not in out + err and "C++ warning" not in out + err   # the one-line note only
    assert p.backend == "torch" and "refused" in p.backend_note and "disagrees" in p.backend_note
    assert "\n" not in p.backend_note
    assert (cache / checkpoint_key(ckpt) / REFUSED).is_file()
    monkeypatch.setattr(onnx_cache, "export", _no_export)
    again = Predictor.from_checkpoint(ckpt, backend="auto", detector="none")
    assert again.backend == "torch" and "refused before" in again.backend_note


def test_ensembles_and_other_devices_stay_on_pytorch(ckpt, cache, monkeypatch):
    monkeypatch.setattr(onnx_cache, "export", _no_export)
    assert onnx_cache.choose_runner([ckpt, ckpt])[0] == "torch"
    assert onnx_cache.choose_runner(ckpt, device="cuda")[0] == "torch"
    assert onnx_cache.choose_runner(ckpt, backend="torch") == ("torch", None, "backend=torch")
