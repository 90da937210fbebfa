"""Checkpoints and configs written before a building block moved keep loading (emomm.utils.moved)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from emomm.utils import moved
from emomm.utils.moved import moved_name, upgrade_targets


@pytest.fixture
def tables(monkeypatch):
    """An old module name for the fusion module and an old class name for the face encoder."""
    monkeypatch.setitem(moved.MOVED_MODULES, "emomm.models.old_fusion", "emomm.models.fusion")
    monkeypatch.setitem(moved.MOVED_NAMES, "emomm.models.old_face.OldFaceEncoder",
                        "emomm.models.encoders.face_timm.FaceEncoder")


def test_names_are_rewritten_at_any_depth_without_touching_the_input(tables):
    cfg = {"fusion": {"_target_": "emomm.models.old_fusion.LateFusion"},
           "encoders": {"face": {"_target_": "emomm.models.old_face.OldFaceEncoder", "x": ["${a}"]}},
           "deep": [{"_target_": "emomm.models.old_fusion.GatedFusion", "dim": 3}],
           "other": {"_target_": "emomm.models.fusion.ConcatFusion"}}
    before = copy.deepcopy(cfg)
    out = upgrade_targets(cfg)
    assert cfg == before
    assert out["fusion"]["_target_"] == "emomm.models.fusion.LateFusion"
    assert out["encoders"]["face"] == {"_target_": "emomm.models.encoders.face_timm.FaceEncoder", "x": ["${a}"]}
    assert out["deep"][0] == {"_target_": "emomm.models.fusion.GatedFusion", "dim": 3}
    assert out["other"] == cfg["other"]
    as_conf = upgrade_targets(OmegaConf.create(cfg))
    assert OmegaConf.to_container(as_conf, resolve=False) == out
    assert moved_name("emomm.models.old_fusionX.LateFusion") == "emomm.models.old_fusionX.LateFusion"


def test_every_new_name_resolves():
    """Each line of the tables points at a name that exists (a typo would break old checkpoints)."""
    from hydra._internal.utils import _locate
    import importlib
    for new in moved.MOVED_MODULES.values():
        importlib.import_module(new)
    for new in moved.MOVED_NAMES.values():
        _locate(new)


def test_a_checkpoint_naming_old_targets_loads_and_predicts_the_same(tables, tmp_path):
    from tests.serve_helpers import tiny_face_checkpoint

    from emomm.models.module import EmotionModule
    path = tiny_face_checkpoint(tmp_path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    hp = ckpt["hyper_parameters"]
    old = copy.deepcopy(ckpt)
    old["hyper_parameters"]["fusion"]["_target_"] = hp["fusion"]["_target_"].replace(
        "emomm.models.fusion", "emomm.models.old_fusion")
    assert hp["encoders"]["face"]["_target_"] == "emomm.models.encoders.face_timm.FaceEncoder"
    old["hyper_parameters"]["encoders"]["face"]["_target_"] = "emomm.models.old_face.OldFaceEncoder"
    old_path = tmp_path / "old.ckpt"
    torch.save(old, old_path)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32))
    with torch.no_grad():
        want = EmotionModule.load_from_checkpoint(path, map_location="cpu").eval()({"inputs": {"face": x}})
        got = EmotionModule.load_from_checkpoint(old_path, map_location="cpu").eval()({"inputs": {"face": x}})
    assert torch.equal(want, got)
