"""A checkpoint cannot make emomm call anything but its model building blocks.

Gadget checkpoints hold only plain data (``torch.load(weights_only=True)`` accepts them) but
set a ``_target_`` of a real trained checkpoint's hyper-parameters (an encoder, the fusion,
the optimizer, the scheduler, the stored data config) to a standard-library callable that
creates a file or folder under ``tmp_path``, directly or in a sneaky form (a library reached
through an emomm module, an emomm function that writes files, a ``_target_`` nested in a
list, ``_partial_``, an interpolation that builds a ``_target_``). Every loader refuses them
with an :class:`~emomm.utils.targets.UnsafeTargetError` naming the file, the key and the
target, before anything is built: the file never appears.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from emomm.utils.safe_load import CheckpointError, UnsafeCheckpointError
from emomm.utils.targets import UnsafeTargetError, check_targets, find_targets, refusal

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

#: (refused target, key below the slot) per gadget kind; the key of a refused interpolation
#: is the string's own key.
KINDS = {
    "open": ("builtins.open", "_target_"),
    "write_text": ("pathlib.Path.write_text", "_target_"),
    "copyfile": ("shutil.copyfile", "_target_"),
    "makedirs": ("os.makedirs", "_target_"),
    "system": ("os.system", "_target_"),
    "reexported_module": ("emomm.models.encoders.text_transformer.os.makedirs", "_target_"),
    "reexported_class": ("emomm.models.encoders.text_transformer.Path.write_text", "_target_"),
    "emomm_function": ("emomm.utils.artifacts.write_json", "_target_"),
    "nested_in_list": ("os.makedirs", "extra[0]._target_"),
    "partial": ("os.makedirs", "_target_"),
    "interpolation": (None, "extra"),
}
#: Where each slot's config sits in the hyper-parameters.
SLOTS = {"encoder": "encoders.face", "fusion": "fusion", "optimizer": "optimizer",
         "scheduler": "scheduler.scheduler", "data": "data"}


def gadget(kind: str, made: Path, src: Path) -> dict:
    """A config that, instantiated by Hydra, creates ``made`` (``src``: a file to copy)."""
    path = str(made)
    return {
        "open": {"_target_": "builtins.open", "file": path, "mode": "w"},
        "write_text": {"_target_": "pathlib.Path.write_text",
                       "_args_": [{"_target_": "pathlib.Path", "_args_": [path]}, "pwned"]},
        "copyfile": {"_target_": "shutil.copyfile", "src": str(src), "dst": path},
        "makedirs": {"_target_": "os.makedirs", "name": path},
        "system": {"_target_": "os.system", "command": f"touch {path}"},
        "reexported_module": {"_target_": "emomm.models.encoders.text_transformer.os.makedirs", "name": path},
        "reexported_class": {"_target_": "emomm.models.encoders.text_transformer.Path.write_text",
                             "_args_": [{"_target_": "emomm.models.encoders.text_transformer.Path", "_args_": [path]}, "pwned"]},
        "emomm_function": {"_target_": "emomm.utils.artifacts.write_json",
                           "_args_": [{"_target_": "emomm.models.encoders.text_transformer.Path", "_args_": [path]}, "pwned"]},
        "nested_in_list": {"_target_": "emomm.models.fusion.ConcatFusion", "_partial_": True,
                           "extra": [{"_target_": "os.makedirs", "name": path}]},
        "partial": {"_target_": "os.makedirs", "_partial_": True, "name": path},
        "interpolation": {"_target_": "emomm.models.fusion.ConcatFusion", "_partial_": True,
                          "extra": "${oc.create:{_target_:os.makedirs,name:'" + path + "'}}"},
    }[kind]


def put(hp: dict, slot: str, cfg: dict) -> None:
    if slot == "encoder":
        hp["encoders"]["face"] = cfg
    elif slot == "scheduler":
        hp["scheduler"] = {**(hp.get("scheduler") or {"interval": "step"}), "scheduler": cfg}
    else:
        hp[SLOTS[slot]] = cfg


@pytest.fixture(scope="module")
def face_ckpt(tmp_path_factory) -> Path:
    from tests.serve_helpers import tiny_face_checkpoint
    return tiny_face_checkpoint(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def base(face_ckpt) -> dict:
    """The real checkpoint's contents, without the optimizer state (smaller gadget files)."""
    ckpt = torch.load(face_ckpt, map_location="cpu", weights_only=True)
    ckpt.pop("optimizer_states", None)
    return ckpt


@pytest.fixture
def make_gadget(base, face_ckpt, tmp_path):
    """``make_gadget(kind, slot) -> (checkpoint path, the path the payload would create)``."""
    def make(kind: str, slot: str = "encoder") -> tuple[Path, Path]:
        made = tmp_path / "made" / f"{kind}_{slot}"
        made.parent.mkdir(exist_ok=True)
        ckpt = copy.deepcopy(base)
        put(ckpt["hyper_parameters"], slot, gadget(kind, made, face_ckpt))
        path = tmp_path / f"gadget_{kind}_{slot}.ckpt"
        torch.save(ckpt, path)
        torch.load(path, weights_only=True)  # plain data: the weights-only loader accepts it
        return path, made
    return make


def assert_refused(err: UnsafeTargetError, path: Path, kind: str, slot: str) -> None:
    target, key = KINDS[kind]
    assert isinstance(err, UnsafeCheckpointError) and isinstance(err, CheckpointError)
    assert err.key == f"hyper_parameters.{SLOTS[slot]}.{key}", err.key
    msg = str(err)
    assert str(path) in msg and err.key in msg, msg
    assert (repr(target) in msg and err.target == target) if target else "interpolation" in msg, msg
    assert "weights_only" not in msg


# -- the payloads are real ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_each_payload_creates_its_file_when_instantiated(kind, face_ckpt, tmp_path):
    """Instantiated as EmotionModule.__init__ / eval / export used to (Hydra, no check), each
    gadget does create its file: the refusals below stop something real."""
    from hydra.utils import instantiate
    made, error = tmp_path / kind, ""
    try:
        out = instantiate(gadget(kind, made, face_ckpt))
        if kind == "partial":
            out()
    except Exception as err:  # noqa: BLE001  (some fail after the damage, as the issue saw)
        error = str(err)
    # Hydra 1.3.8 blocklists os.system itself (earlier 1.3 releases run it); ours refuses it anyway.
    assert made.exists() or (kind == "system" and "blocklisted" in error), error


# -- every loader refuses them, nothing is created ---------------------------------------------
@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("kind", KINDS)
def test_load_from_checkpoint_refuses_every_gadget_in_every_slot(kind, slot, make_gadget):
    from emomm.models.module import EmotionModule
    path, made = make_gadget(kind, slot)
    with pytest.raises(UnsafeTargetError) as info:
        EmotionModule.load_from_checkpoint(path, map_location="cpu")
    assert_refused(info.value, path, kind, slot)
    assert not made.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_predictor_and_the_server_refuse_the_gadgets(kind, make_gadget, face_ckpt):
    from emomm import Predictor
    from emomm.serve.app import create_app
    from emomm.serve.engine import ServeEngine
    path, made = make_gadget(kind, "encoder")
    with pytest.raises(UnsafeTargetError) as info:
        Predictor.from_checkpoint(path)
    assert_refused(info.value, path, kind, "encoder")
    with pytest.raises(UnsafeTargetError):
        create_app(ServeEngine.from_checkpoint(path))
    with pytest.raises(UnsafeTargetError):  # an ensemble with one bad member
        Predictor.from_checkpoint([face_ckpt, path])
    assert not made.exists()


def test_ensemble_and_init_from_refuse_a_gadget(make_gadget, face_ckpt, cfg_factory):
    from emomm.ensemble import ensemble
    from emomm.models.encoders.video_temporal import VideoEncoder
    from emomm.models.multimodal import encoder_state
    path, made = make_gadget("makedirs", "data")
    with pytest.raises(UnsafeTargetError, match="hyper_parameters.data._target_"):
        ensemble(cfg_factory([f"runs=[{face_ckpt},{path}]"], config_name="ensemble", subdir="ens"))
    with pytest.raises(UnsafeTargetError, match=str(path)):  # model.init_from={face: gadget}
        encoder_state(path, "face")
    with pytest.raises(UnsafeTargetError, match=str(path)):  # model.encoders.video.init_from
        VideoEncoder(backbone="resnet10t", in_chans=1, init_from=str(path), hidden_size=8, num_heads=2)
    assert not made.exists()


@pytest.mark.parametrize("kind", ["open", "makedirs", "nested_in_list", "interpolation"])
def test_eval_and_export_check_the_stored_data_config_they_build(kind, face_ckpt, cfg_factory, tmp_path):
    """The second line: a model whose stored data config was swapped after loading is refused
    where eval (and ensemble, personalize) and int8 calibration build that config."""
    from emomm.runs.evaluation import eval_datamodule
    from emomm.inference.onnx_export import ExportNet, calibration_batches
    from emomm.models.module import EmotionModule
    model = EmotionModule.load_from_checkpoint(face_ckpt, map_location="cpu").eval()
    made = tmp_path / "made"
    model.hparams.data = gadget(kind, made, face_ckpt)
    with pytest.raises(UnsafeTargetError, match="hyper_parameters.data"):
        eval_datamodule(cfg_factory([f"ckpt_path={face_ckpt}"], config_name="eval"), [model], face_ckpt)
    with pytest.raises(UnsafeTargetError, match="hyper_parameters.data"):
        calibration_batches(model, ExportNet(model), source=face_ckpt)
    assert not made.exists()


def test_groups_read_from_a_file_are_checked(monkeypatch, tmp_path):
    """``groups=<name>`` reads conf/groups/<name>.yaml: a file, so its targets are checked."""
    import emomm.utils.runtime
    from emomm.data.core.group_sources import build_source
    made = tmp_path / "made"
    (tmp_path / "groups").mkdir()
    (tmp_path / "groups" / "evil.yaml").write_text(yaml.safe_dump({"_target_": "os.makedirs", "name": str(made)}))
    fine = {"_target_": "emomm.data.datasets.ravdess.RavdessSex"}
    (tmp_path / "groups" / "fine.yaml").write_text(yaml.safe_dump(fine))
    monkeypatch.setattr(emomm.utils.runtime, "CONFIG_DIR", str(tmp_path))
    with pytest.raises(UnsafeTargetError, match="evil.yaml: refused to load: _target_ = 'os.makedirs'"):
        build_source("evil")
    assert not made.exists()
    assert type(build_source("fine")[0]).__name__ == "RavdessSex"


# -- the entry points: one error line, no traceback, a non-zero exit -------------------------
def run_cli(module: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args, f"hydra.run.dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, env=ENV, cwd=REPO, timeout=600)


def assert_cli_refused(proc: subprocess.CompletedProcess, path: Path, target: str, made: Path) -> None:
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = next(x for x in proc.stderr.splitlines() if x.startswith("error: "))
    assert str(path) in line and repr(target) in line, line
    assert not made.exists()


@pytest.mark.parametrize("module,kind,slot", [  # a CLI start: ~7 s, ~20 s on the loaded 2-core box
    ("emomm.predict", "open", "encoder"),
    pytest.param("emomm.eval", "makedirs", "data", marks=pytest.mark.slow),
    pytest.param("emomm.export", "nested_in_list", "fusion", marks=pytest.mark.slow),
])
def test_clis_refuse_a_gadget_with_one_error_line(module, kind, slot, make_gadget, tmp_path):
    path, made = make_gadget(kind, slot)
    args = [f"ckpt_path={path}"] + ([f"inputs=[{path}]"] if module == "emomm.predict" else []) + \
        ([f"out_dir={tmp_path / 'export'}"] if module == "emomm.export" else [])
    proc = run_cli(module, *args, tmp_path=tmp_path)
    assert_cli_refused(proc, path, KINDS[kind][0], made)
    assert not (tmp_path / "export").exists()


# -- the allow-list itself ---------------------------------------------------------------------
def conf_targets() -> list[tuple[str, str]]:
    out = []
    for f in sorted((REPO / "conf").rglob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            out += [(f"{f.relative_to(REPO)}:{k}", t) for k, t in find_targets(doc)]
    return out


def test_every_target_in_conf_passes_the_allow_list():
    """A new config naming something the allow-list lacks fails here, not in a user's run."""
    found = conf_targets()
    assert len(found) > 50 and any(t == "lightning.pytorch.Trainer" for _, t in found)
    refused = {where: (t, refusal(t)) for where, t in found if refusal(t)}
    assert not refused, refused
    for f in (REPO / "conf").rglob("*.yaml"):  # the whole files, with their interpolations
        for doc in yaml.safe_load_all(f.read_text()):
            check_targets(doc, f, interpolations=True)


@pytest.mark.parametrize("target", [
    "builtins.open", "os.system", "posix.system", "subprocess.Popen", "torch.load", "torch.hub.load",
    "emomm.models.module.instantiate",             # hydra's instantiate, imported into an emomm module
    "emomm.models.module.__builtins__.open",       # dunder
    "emomm.models.encoders.face_timm.timm.create_model",
    "emomm.models.module.torch.nn.Linear",          # a library class through an emomm module
    "emomm.models.module.EmotionModule.load_from_checkpoint",
    "emomm.utils.artifacts.write_json", "emomm.train.train", "emomm.runs.training.train",
    "emomm.models", "emomm", "emomm.nothing.Here", "emomm..models.module.EmotionModule", " emomm.models.fusion.auto_fusion",
    "torch.optim.Optimizer", "lightning.pytorch.Trainer.fit",
])
def test_refused_targets(target):
    assert refusal(target), target


@pytest.mark.parametrize("target", [
    "emomm.models.module.EmotionModule", "emomm.models.encoders.face_timm.FaceEncoder", "emomm.models.fusion.auto_fusion",
    "emomm.models.schedulers.warmup_cosine", "emomm.data.synthetic.SyntheticDataModule", "emomm.callbacks.ema.EMA",
    "emomm.data.core.group_sources.CsvGroups", "emomm.data.datasets.cremad.CremadDemographics",
    "torch.optim.AdamW", "lightning.pytorch.callbacks.ModelCheckpoint",
])
def test_allowed_targets(target):
    assert refusal(target) is None


def test_the_walk_finds_targets_anywhere():
    from omegaconf import OmegaConf
    cfg = {"a": [{"b": ({"_target_": "os.system"},)}], "_args_": [1, {"_target_": "builtins.open"}]}
    assert sorted(find_targets(cfg, "hp")) == [("hp._args_[1]._target_", "builtins.open"),
                                             ("hp.a[0].b[0]._target_", "os.system")]
    with pytest.raises(UnsafeTargetError, match=r"x\.a\[0\]\.b\[0\]\._target_ = 'os.system'"):
        check_targets(OmegaConf.create({"a": [{"b": [{"_target_": "os.system"}]}]}), "f.yaml", prefix="x")
    with pytest.raises(UnsafeTargetError, match="is a dict, not a dotted name"):
        check_targets({"_target_": {"x": 1}}, "f.yaml")
    with pytest.raises(UnsafeTargetError, match="interpolation"):  # DictConfigs are checked unresolved
        check_targets(OmegaConf.create({"x": "${oc.env:HOME}"}), "f.yaml")
    deep: dict = {"_target_": "os.system"}
    for _ in range(5000):  # deeper than the recursion limit: the walk is iterative
        deep = {"k": [deep]}
    with pytest.raises(UnsafeTargetError):
        check_targets(deep, "deep.ckpt")
    check_targets({"_target_": "emomm.models.fusion.ConcatFusion", "x": [{"y": "plain text $ {}"}]}, "f")


def test_a_normal_checkpoint_loads_and_predicts_as_before(face_ckpt):
    """The checked loader rebuilds the same model as Lightning's own loader did."""
    import lightning as L
    import numpy as np

    from emomm import Predictor
    from emomm.models.checkpoint_reload import INIT_WEIGHT_ARGS
    from emomm.models.module import EmotionModule
    ours = EmotionModule.load_from_checkpoint(face_ckpt, map_location="cpu").eval()
    hp = torch.load(face_ckpt, weights_only=True)["hyper_parameters"]
    encoders = {m: {k: INIT_WEIGHT_ARGS[k] if k in INIT_WEIGHT_ARGS else v for k, v in c.items()}
                for m, c in hp["encoders"].items()}
    theirs = L.LightningModule.load_from_checkpoint.__func__(
        EmotionModule, face_ckpt, map_location="cpu", encoders=encoders, init_from=None, weights_only=True).eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(ours({"inputs": {"face": x}}), theirs({"inputs": {"face": x}}))
    crops = np.random.default_rng(0).integers(0, 255, (4, 40, 40, 3), dtype=np.uint8)
    p = Predictor.from_checkpoint(face_ckpt)
    assert np.array_equal(p.classify_faces(crops), Predictor.from_checkpoint(face_ckpt).classify_faces(crops))
    assert p.label_names == ours.label_names == list(hp["label_names"])
