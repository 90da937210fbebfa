"""Loading a checkpoint or a cache file never runs code from it: a pickle whose
``__reduce__`` would create a marker file is refused by every loader, and the marker never
appears."""
from __future__ import annotations

import os
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


class EvilOpen:
    """Unpickling runs ``open(marker, "w")``: torch's refusal of an allowed module's function
    (io.open) comes with its advice to load the file anyway, which ours must not repeat."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_ckpt(path: Path, marker: Path, payload: type = Evil) -> Path:
    # A plausible Lightning checkpoint whose hyper_parameters hold the payload.
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {"x": payload(marker)},
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
    with pytest.raises(UnsafeCheckpointError):  # with encoders given too: the file is always checked
        EmotionModule.load_from_checkpoint(ckpt, encoders={})
    with pytest.raises(UnsafeCheckpointError) as info:
        Predictor.from_checkpoint(ckpt)
    # torch's own refusal advises `weights_only=False`; ours names what the file asked for instead
    assert "weights_only" not in str(info.value) and "GLOBAL posix.system" in str(info.value), info.value
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


# -- checkpoints that are damaged, incomplete or no checkpoint at all ------------------------------
@pytest.fixture(scope="module")
def face_ckpt(tmp_path_factory) -> Path:
    from tests.serve_helpers import tiny_face_checkpoint
    return tiny_face_checkpoint(tmp_path_factory.getbasetemp())


def _without(ckpt: dict, *keys: str) -> dict:
    out = dict(ckpt)
    out["hyper_parameters"] = {k: v for k, v in ckpt["hyper_parameters"].items() if k not in keys}
    return out


#: name -> (what to write, given the real checkpoint's bytes and contents; words the error must hold)
BAD = {
    "empty": (lambda raw, ck: b"", "is empty (0 bytes)"),
    "truncated": (lambda raw, ck: raw[: len(raw) // 2], "is truncated or damaged"),
    "truncated_early": (lambda raw, ck: raw[:100], "is truncated or damaged"),
    "jpeg": (lambda raw, ck: _jpeg_bytes(), "is not a PyTorch checkpoint"),
    "text": (lambda raw, ck: b"hello, I am not a checkpoint\n", "is not a PyTorch checkpoint"),
    "list": (lambda raw, ck: [1, 2], "holds a list, not a checkpoint"),
    "bare_state_dict": (lambda raw, ck: ck["state_dict"], "holds no hyper_parameters"),
    "no_hparams": (lambda raw, ck: {k: v for k, v in ck.items() if k != "hyper_parameters"}, "holds no hyper_parameters"),
    "no_weights": (lambda raw, ck: {k: v for k, v in ck.items() if k != "state_dict"}, "holds no weights"),
    "no_encoders": (lambda raw, ck: _without(ck, "encoders"), "lack ['encoders']"),
    "no_label_names": (lambda raw, ck: _without(ck, "label_names", "fusion"), "lack ['label_names', 'fusion']"),
    "bad_encoders": (lambda raw, ck: {**ck, "hyper_parameters": {**ck["hyper_parameters"], "encoders": {"face": "x"}}},
                     "encoders must map each modality to a config"),
    "wrong_weights": (lambda raw, ck: {**ck, "state_dict": dict(list(ck["state_dict"].items())[1:])},
                      "cannot rebuild the model"),
    "instantiator": (lambda raw, ck: {**ck, "hyper_parameters": {**ck["hyper_parameters"],
                                                                "_instantiator": "builtins.exec"}},
                     "_instantiator = 'builtins.exec'"),
    "nan_weights": (lambda raw, ck: {**ck, "state_dict": {k: torch.full_like(v, float("nan")) if v.is_floating_point()
                                                          else v for k, v in ck["state_dict"].items()}},
                    "weight tensor(s) hold NaN"),
    "pickled": (None, "GLOBAL posix.system"),
    "pickled_open": (None, "GLOBAL io.open"),
}


def _jpeg_bytes() -> bytes:
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def write_bad(name: str, face_ckpt: Path, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.ckpt"
    if name == "pickled":
        return _evil_ckpt(path, tmp_path / "pwned")
    if name == "pickled_open":
        return _evil_ckpt(path, tmp_path / "pwned", EvilOpen)
    make, _ = BAD[name]
    content = make(face_ckpt.read_bytes(), torch.load(face_ckpt, map_location="cpu", weights_only=True))
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    return path


def assert_names_file_and_fix(err: Exception, path: Path, words: str) -> None:
    from emomm.utils.safe_load import CheckpointError
    msg = str(err)
    assert isinstance(err, CheckpointError), f"{type(err).__name__}: {msg}"
    assert str(path) in msg and words in msg, msg
    assert "emomm.train" in msg or "trust" in msg, msg  # the fix: a run's checkpoint, or a trusted one
    assert "weights_only" not in msg, msg


@pytest.mark.parametrize("name", BAD)
def test_a_bad_checkpoint_is_one_clear_error_in_every_entry_point(name, face_ckpt, tmp_path, cfg_factory):
    """Each bad file fails with one CheckpointError naming it and the fix, whichever entry
    point loads it: the module, the Predictor, export, the server, eval and ensemble."""
    from emomm import Predictor
    from emomm.ensemble import ensemble
    from emomm.eval import evaluate
    from emomm.inference.onnx_export import export
    from emomm.models.module import EmotionModule
    from emomm.serve.engine import ServeEngine

    path = write_bad(name, face_ckpt, tmp_path)
    words = BAD[name][1]
    calls = {
        "module": lambda: EmotionModule.load_from_checkpoint(path, map_location="cpu"),
        "predictor": lambda: Predictor.from_checkpoint(path),
        "export": lambda: export(ckpt_path=path, out_dir=tmp_path / "export"),
        "serve": lambda: ServeEngine.from_checkpoint(path),
        "eval": lambda: evaluate(cfg_factory([f"ckpt_path={path}"], config_name="eval", subdir="eval")),
        "ensemble": lambda: ensemble(cfg_factory([f"runs=[{face_ckpt},{path}]"], config_name="ensemble",
                                                 subdir="ens")),
    }
    for where, call in calls.items():
        with pytest.raises(Exception) as info:
            call()
        assert_names_file_and_fix(info.value, path, words)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "export").exists()


def test_a_missing_path_or_a_folder_names_it(tmp_path):
    from emomm import Predictor
    from emomm.models.module import EmotionModule
    from emomm.utils.safe_load import CheckpointError, CheckpointNotFoundError
    with pytest.raises(CheckpointNotFoundError, match=re.escape(f"{tmp_path / 'nope.ckpt'}: no such checkpoint")):
        EmotionModule.load_from_checkpoint(tmp_path / "nope.ckpt")
    with pytest.raises(FileNotFoundError):  # still a FileNotFoundError for callers that catch that
        Predictor.from_checkpoint(tmp_path / "nope.ckpt")
    with pytest.raises(CheckpointError, match=re.escape(f"{tmp_path}: is a folder, not a checkpoint file")):
        EmotionModule.load_from_checkpoint(tmp_path)


@pytest.mark.parametrize("entry", ["predict", "eval", "export", "serve", "ensemble", "personalize", "live"])
def test_every_entry_point_prints_a_checkpoint_error_without_a_traceback(entry, monkeypatch, capsys):
    """Each CLI's ``main`` turns a CheckpointError into one ``error:`` line and exit status 1."""
    import importlib

    from omegaconf import OmegaConf

    from emomm.utils.safe_load import CheckpointError
    module = importlib.import_module({"predict": "emomm.predict", "eval": "emomm.eval", "export": "emomm.export",
                                      "serve": "emomm.serve.__main__", "ensemble": "emomm.ensemble",
                                      "personalize": "emomm.personalize.__main__",
                                      "live": "emomm.live.__main__"}[entry])
    inner = {"predict": "predict", "eval": "evaluate", "export": "resolve_ckpt", "serve": "serve", "ensemble": "ensemble",
             "personalize": "run", "live": "build"}[entry]

    def refuse(*args, **kwargs):
        raise CheckpointError("/x/bad.ckpt: is empty (0 bytes); copy it again")

    monkeypatch.setattr(module, inner, refuse)
    cfg = OmegaConf.create({"ckpt_path": "/x/bad.ckpt", "paths": {"log_dir": "/x"}, "threads": 0})
    with pytest.raises(SystemExit) as info:
        module.main.__wrapped__(cfg)
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip() == "error: /x/bad.ckpt: is empty (0 bytes); copy it again"


@pytest.mark.slow  # five CLI starts (~20 s each on the loaded 2-core box)
@pytest.mark.parametrize("module,name", [("emomm.predict", "empty"), ("emomm.eval", "truncated"),
                                         ("emomm.export", "jpeg"), ("emomm.serve", "no_hparams"),
                                         ("emomm.ensemble", "pickled")])
def test_clis_report_a_bad_checkpoint_in_one_line(module, name, face_ckpt, tmp_path):
    path = write_bad(name, face_ckpt, tmp_path)
    args = {"emomm.predict": [f"ckpt_path={path}", f"inputs=[{path}]"], "emomm.eval": [f"ckpt_path={path}"],
            "emomm.export": [f"ckpt_path={path}", f"out_dir={tmp_path / 'export'}"],
            "emomm.serve": [f"ckpt_path={path}"], "emomm.ensemble": [f"runs=[{face_ckpt},{path}]"]}[module]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", module, *args, f"hydra.run.dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1 and str(path) in errors[0] and BAD[name][1] in errors[0], proc.stderr[-2000:]
    assert "weights_only" not in proc.stderr


@pytest.mark.parametrize("entry,error", [("eval", "DataError"), ("live", "VideoReadError"), ("live", "LiveInputError"),
                                         ("live", "AudioReadError")])
def test_input_errors_are_one_line_too(entry, error, monkeypatch, capsys):
    """eval's data errors and live mode's source errors (named file or device, and the fix)
    print as one ``error:`` line with exit status 1, like a checkpoint error."""
    import importlib

    from omegaconf import OmegaConf

    from emomm.data.core.emotion_datamodule import DataError
    from emomm.live.voice_input import LiveInputError
    from emomm.media.audio import AudioReadError
    from emomm.media.video import VideoReadError
    kind = {"DataError": DataError, "LiveInputError": LiveInputError, "AudioReadError": AudioReadError,
            "VideoReadError": VideoReadError}[error]
    module = importlib.import_module({"eval": "emomm.eval", "live": "emomm.live.__main__"}[entry])

    def fail(*args, **kwargs):
        raise kind("/x/clip.mp4: cannot be read; re-encode it")

    monkeypatch.setattr(module, {"eval": "evaluate", "live": "build"}[entry], fail)
    with pytest.raises(SystemExit) as info:
        module.main.__wrapped__(OmegaConf.create({"ckpt_path": "/x/a.ckpt", "threads": 0}))
    assert info.value.code == 1
    assert capsys.readouterr().err.strip() == "error: /x/clip.mp4: cannot be read; re-encode it"
