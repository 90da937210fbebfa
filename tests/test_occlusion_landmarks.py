"""Occlusion for the landmarks modality (issue 45): a landmark model is scored on meshes re-run
on the occluded faces (the same painted crop the pixel model sees), cached apart from the clean
meshes, with the faces whose mesh is lost counted; eval and ensemble report it. A recording fake
mesh stands in for MediaPipe's model (tests/landmark_fixtures.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emomm.analysis.occlusion import mesh_found, occluded_view
from emomm.data.datasets.fer2013 import Fer2013DataModule, read_fer_csv
from emomm.data.pipelines.occluders import fill_colour, occlusion_mask
from tests.landmark_fixtures import FakeMesh

LANDMARKS = {"points": 468, "augment": {"jitter": 0.0}}
ENCODER = ["model.encoders.landmarks.hidden_size=32", "model.encoders.landmarks.num_heads=2"]
TINY_FACE = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=48"]


class RecordingMesh(FakeMesh):
    """The fake mesh, keeping every crop it was given (framed by ``landmarks.mesh.pad``)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[np.ndarray] = []

    def __call__(self, crops):
        self.seen += [np.asarray(c).copy() for c in crops]
        return super().__call__(crops)


@pytest.fixture
def recording(monkeypatch) -> RecordingMesh:
    fake = RecordingMesh()
    monkeypatch.setattr("emomm.faces.landmark_store.build_mesh", lambda *a, **k: fake)
    return fake


def unframed(crop: np.ndarray, side: int = 48, pad: float = 0.25) -> np.ndarray:
    k = int(round(pad * side))
    return crop[k:k + side, k:k + side]


def test_occluded_view_remeshes_the_painted_faces_under_their_own_cache_key(fer_csv, recording, tmp_path):
    cache = tmp_path / "meshes"
    dm = Fer2013DataModule(root=str(fer_csv.parent), modalities=["landmarks"], landmarks=LANDMARKS,
                           mesh_cache_dir=str(cache))
    dm.setup("test")
    clean = dm.splits["test"]
    entries = set(cache.glob("*.npz"))
    recording.seen.clear()
    view, found = occluded_view(dm, "test", "lower", 7, ["landmarks"])
    # the mesh ran on every test face with the surgical mask painted on it, as the pixels get it
    images, _, _ = read_fer_csv(fer_csv)
    mask = occlusion_mask("lower", 48, 48)
    assert len(recording.seen) == len(images["test"]) == len(view)
    fill = round(fill_colour("lower", 1)[0])
    for crop, image in zip(recording.seen, images["test"]):
        face = unframed(crop)
        assert (face[mask] == fill).all() and np.array_equal(face[~mask], image[~mask])
    # cached apart from the clean meshes, and found again there
    assert len(set(cache.glob("*.npz")) - entries) == 1
    calls = recording.calls
    again, found_again = occluded_view(dm, "test", "lower", 7, ["landmarks"])
    assert recording.calls == calls and np.array_equal(found, found_again)
    # the landmark input changed where the mask moved the (brightness-driven) fake mesh
    changed = [not torch.equal(view[i]["inputs"]["landmarks"], clean[i]["inputs"]["landmarks"]) for i in range(len(view))]
    assert any(changed)
    # a face without a mesh on the occluded crop: an empty mesh (landmarks alone), counted
    lost = np.flatnonzero(~found)
    assert len(lost) and all(not view[int(i)]["inputs"]["landmarks"].any() for i in lost)
    assert mesh_found(found) == {"faces": 21, "found": int(found.sum()), "rate": round(float(found.mean()), 4)}
    assert dm.splits["test"] is clean


def test_paired_faces_get_painted_pixels_and_remeshed_landmarks(fer_csv, recording, tmp_path):
    dm = Fer2013DataModule(root=str(fer_csv.parent), modalities=["face", "landmarks"], landmarks=LANDMARKS,
                           mesh_cache_dir=str(tmp_path / "meshes"))
    dm.setup("test")
    view, found = occluded_view(dm, "test", "upper", 0, ["face", "landmarks"])
    mask = torch.from_numpy(occlusion_mask("upper", 48, 48))
    fill = (round(fill_colour("upper", 1)[0]) / 255 - 0.5) / 0.5
    for i in range(len(view)):
        sample = view[i]
        assert torch.allclose(sample["inputs"]["face"][0][mask], torch.tensor(fill))
        assert ("landmarks" in sample["inputs"]) == bool(found[i])   # lost: masked as missing


def test_a_datamodule_that_cannot_remesh_is_refused_for_a_landmark_model():
    class NoRemesh:
        splits = {"test": []}
        preprocessing = {"landmarks": {}}

    with pytest.raises(ValueError, match="re-runs the face mesh on the occluded faces"):
        occluded_view(NoRemesh(), "test", "lower", 0, ["landmarks"])


def test_eval_and_ensemble_score_landmarks_under_occlusion(cfg_factory, fer_csv, recording, tmp_path):
    from emomm.eval import evaluate
    from emomm.ensemble import ensemble
    from emomm.models.ensemble_methods import combine
    from emomm.models.module import EmotionModule
    from emomm.runs.ensembling import collect_occluded, group_datamodules, score
    from emomm.runs.training import train

    data = ["data=fer2013", f"data.root={fer_csv.parent}", f"data.mesh_cache_dir={tmp_path / 'meshes'}",
            "trainer.max_epochs=1", "data.batch_size=21"]
    train(cfg_factory(["modality=landmarks", *ENCODER, *data], subdir="lm"))
    train(cfg_factory([*TINY_FACE, *data], subdir="face"))
    lm, face = tmp_path / "lm" / "checkpoints" / "best.ckpt", tmp_path / "face" / "checkpoints" / "best.ckpt"
    cfg = cfg_factory([f"ckpt_path={lm}", "occlusion=[lower,upper]"], config_name="eval", subdir="eval")
    result = evaluate(cfg)
    assert list(result["test_occlusion"]) == ["clean", "lower", "upper"]
    mesh = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())["test_occlusion_mesh"]
    assert mesh["clean"]["faces"] == mesh["lower"]["faces"] == 21
    assert not (Path(cfg.paths.output_dir) / "occlusion_examples.png").exists()   # no face pixels to show
    cfg = cfg_factory([f"runs=[{lm},{face}]", "method=mean", "occlusion=[lower]"], config_name="ensemble",
                      subdir="ens")
    out = ensemble(cfg)
    table = out["test_occlusion"]
    assert list(table) == ["clean", "lower"] and table["clean"]["ensemble"] == out["test"]
    assert set(table["lower"]["models"]) == set(out["test_models"])
    assert list(out["test_occlusion_mesh"]["lower"].values())[0] == mesh["lower"]
    # a face whose mesh is lost: the landmark member is left out, the pixel model alone answers
    # there (as in the Predictor's ensembles); the landmark model alone is still scored on it
    names = list(out["test_models"])
    models = {n: EmotionModule.load_from_checkpoint(c, map_location="cpu").eval() for n, c in zip(names, (lm, face))}
    dms = group_datamodules(cfg, models, dict(zip(names, (lm, face))))
    test, _ = collect_occluded(dms, models, dms[0][1].label_names, "lower", cfg.seed)
    lost = ~test.present[0]
    assert test.present[1].all() and 0 < int(lost.sum()) == 21 - mesh["lower"]["found"]
    probs = combine("mean", test.probs, test.labels, test.probs, test.present, test.present)[0]
    assert torch.equal(probs[lost], test.probs[1][lost])
    assert table["lower"]["dropped"] == {names[0]: int(lost.sum()), names[1]: 0}
    assert table["lower"]["ensemble"] == score(probs, test.labels, 7)[0] and "empty" in out["scoring"]
    assert out["test_dropped"] == {n: 21 - out["test_occlusion_mesh"]["clean"][names[0]]["found"] if n == names[0]
                                   else 0 for n in names}
