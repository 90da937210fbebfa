"""Each stream's own prediction beside the fused one, in every front end, for both ways a user
gets pixels and landmarks: one hybrid ``[face, landmarks]`` checkpoint (its per-modality heads)
and a mean ensemble of a pixel model and a landmark model (``ckpt_path=[face, landmarks]``).
Tiny checkpoints on the synthetic data, a generated face, the tests' fake mesh (which finds no
face in some crops: such a face has no landmarks stream)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from emomm.faces.base import Faces
from emomm.inference.predictor import Predictor
from emomm.inference.runner import EnsembleRunner, softmax
from emomm.live.overlay import layout
from emomm.live.stream import LivePipeline
from emomm.runs.training import train
from emomm.serve.app import ServeSettings, create_app
from emomm.serve.engine import ServeEngine
from tests.conftest import make_cfg
from tests.landmark_fixtures import use_fake_mesh
from tests.test_landmarks_modality import LANDMARKS
from tests.test_multimodal_train import FACE, SMALL

RUNS = {"hybrid": ["modality=multimodal", "modalities=[face,landmarks]", *FACE, *LANDMARKS],
        "face": ["modality=face", *FACE], "landmarks": ["modality=landmarks", *LANDMARKS]}


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """``{hybrid, face, landmarks}`` -> a tiny best.ckpt, all on the synthetic data's labels."""
    out = {}
    for name, overrides in RUNS.items():
        run = tmp_path_factory.mktemp(name)
        train(make_cfg("train", run, [*overrides, *SMALL, "debug=limit", "trainer.max_epochs=1"]))
        out[name] = run / "checkpoints" / "best.ckpt"
    return out


def model(ckpts, kind: str):
    """What a user passes as ``ckpt_path``: the hybrid checkpoint, or the pixel + landmark pair."""
    return ckpts["hybrid"] if kind == "hybrid" else [ckpts["face"], ckpts["landmarks"]]


@pytest.fixture(scope="module")
def faces(tmp_path_factory, ckpts):
    """Two 32x32 face images (the synthetic models' crop size: used whole): ``meshed`` (the fake
    mesh finds it) and ``bare`` (it does not)."""
    folder = tmp_path_factory.mktemp("faces")
    with pytest.MonkeyPatch.context() as mp:
        use_fake_mesh(mp)
        p = Predictor.from_checkpoint(ckpts["hybrid"])
        found, rng = {}, np.random.default_rng(0)
        while len(found) < 2:
            img = np.clip(rng.normal(120, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
            key = "meshed" if p.face_meshes(p.crop_faces(img, None, whole=True))[0] is not None else "bare"
            if key not in found:
                found[key] = folder / f"{key}.png"
                Image.fromarray(img).save(found[key])
    return found


@pytest.mark.parametrize("kind", ["hybrid", "ensemble"])
def test_predict_jsonl_and_csv_carry_each_streams_prediction(ckpts, faces, kind, tmp_path, monkeypatch):
    from emomm.predict import predict

    use_fake_mesh(monkeypatch)
    ckpt = model(ckpts, kind)
    value = f"[{ckpt[0]},{ckpt[1]}]" if isinstance(ckpt, list) else str(ckpt)
    cfg = make_cfg("predict", tmp_path, [f"ckpt_path={value}", f"inputs=[{faces['meshed']},{faces['bare']}]"])
    assert predict(cfg) == 0
    records = {r["input"]: r for r in map(json.loads, open(tmp_path / "predictions.jsonl"))}
    meshed, bare = (records[str(faces[k])]["faces"][0] for k in ("meshed", "bare"))
    assert set(meshed["modality_probs"]) == {"face", "landmarks"}
    assert set(bare["modality_probs"]) == {"face"}   # no mesh: no landmarks stream, never a guess
    for f in (meshed, bare):
        assert all(len(p) == len(f["probs"]) and sum(p) == pytest.approx(1, abs=1e-4)
                   for p in f["modality_probs"].values())
    labels = records[str(faces["meshed"])]["label_names"]
    rows = {r["input"]: r for r in csv.DictReader(open(tmp_path / "summary.csv"))}
    assert list(rows[str(faces["meshed"])])[-4:] == ["face_label", "face_confidence", "landmarks_label",
                                                     "landmarks_confidence"]
    for key, f in (("meshed", meshed), ("bare", bare)):
        row = rows[str(faces[key])]
        for m in ("face", "landmarks"):
            if m in f["modality_probs"]:
                p = f["modality_probs"][m]
                assert row[f"{m}_label"] == labels[int(np.argmax(p))]
                assert float(row[f"{m}_confidence"]) == pytest.approx(max(p), abs=1e-4)
            else:
                assert row[f"{m}_label"] == row[f"{m}_confidence"] == ""
    if kind == "ensemble":   # each member's own prediction; the fused one is their mean
        alone = {m: Predictor.from_checkpoint(ckpts[m], detector="none") for m in ("face", "landmarks")}
        own = {m: alone[m].predict_image(faces["meshed"]).faces[0].probs for m in alone}
        for m in own:
            np.testing.assert_allclose(meshed["modality_probs"][m], own[m], atol=1e-5)
        np.testing.assert_allclose(meshed["probs"], (np.asarray(own["face"]) + own["landmarks"]) / 2, atol=1e-5)
        # a face without a mesh: the landmark model is left out of the mean, as a bundle leaves
        # out a member without input
        np.testing.assert_allclose(bare["probs"], alone["face"].predict_image(faces["bare"]).faces[0].probs,
                                   atol=1e-5)


def test_ensemble_leaves_out_per_sample_a_member_without_its_modality():
    class Fixed:
        label_names, preprocessing = ["a", "b"], {}

        def __init__(self, mod, logits):
            self.modalities, self.logits = [mod], np.asarray(logits, np.float32)

        def run(self, inputs, present=None, lengths=None):
            z = np.tile(self.logits, (len(inputs[self.modalities[0]]), 1))
            return z, {self.modalities[0]: z}

    ens = EnsembleRunner([Fixed("face", [2.0, 0.0]), Fixed("landmarks", [0.0, 2.0])])
    assert ens.modalities == ["face", "landmarks"]
    fused, heads = ens.run({"face": np.zeros((2, 1)), "landmarks": np.zeros((2, 1))},
                           present={"landmarks": np.array([True, False])})
    face, lm = softmax([2.0, 0.0]), softmax([0.0, 2.0])
    np.testing.assert_allclose(softmax(fused), [(face + lm) / 2, face], atol=1e-6)
    np.testing.assert_allclose(softmax(heads["landmarks"]), [lm, lm], atol=1e-6)
    with pytest.raises(ValueError, match="other preprocessing of face"):
        a, b = Fixed("face", [0.0, 0.0]), Fixed("face", [0.0, 0.0])
        a.preprocessing, b.preprocessing = {"face": {"image_size": 32}}, {"face": {"image_size": 48}}
        EnsembleRunner([a, b])


@pytest.mark.parametrize("kind", ["hybrid", "ensemble"])
def test_serve_image_answer_has_each_streams_view_beside_the_fused_one(ckpts, faces, kind, monkeypatch):
    use_fake_mesh(monkeypatch)
    client = TestClient(create_app(ServeEngine.from_checkpoint(model(ckpts, kind)), ServeSettings()))
    got = {}
    for key in ("meshed", "bare"):
        r = client.post("/api/predict/image", files={"file": (f"{key}.png", faces[key].read_bytes(), "image/png")})
        assert r.status_code == 200, r.text
        got[key] = r.json()
    face = got["meshed"]["faces"][0]
    assert got["meshed"]["view_names"] == ["fused", "face", "landmarks"]
    assert face["views"]["fused"] == face["probs"] and set(face["views"]) == {"fused", "face", "landmarks"}
    assert face["views"]["face"] != face["probs"] and face["views"]["landmarks"] != face["probs"]
    assert set(got["bare"]["faces"][0]["views"]) == {"fused", "face"}


@pytest.mark.parametrize("kind", ["hybrid", "ensemble"])
def test_live_frame_records_and_overlay_carry_each_stream(ckpts, kind, monkeypatch, tmp_path):
    from tests.serve_helpers import face_frame

    use_fake_mesh(monkeypatch)
    frame = face_frame(160, 120)

    class Whole:   # the face fills the frame's middle; the crop is the models' 32 px
        kind, no_face_run, calls = "fake", 0, 0

        def detect(self, f):
            return [Faces(np.array([[40, 20, 120, 100]], np.float32), np.ones(1, np.float32))]

    p = Predictor.from_checkpoint(model(ckpts, kind))
    pipe = LivePipeline(p, Whole(), ema=0.0)
    rec = pipe.process(frame, 0.0).to_dict()
    f = rec["faces"][0]
    assert set(f["modality_probs"]) == {"face", "landmarks"}
    crop = np.stack([pipe_crop(pipe, frame)])
    fused, own = p.classify_faces(crop, with_own=True)
    assert f["probs"] == pytest.approx(fused[0].tolist(), abs=1e-4)
    for m, v in f["modality_probs"].items():
        assert v == pytest.approx(own[m][0].tolist(), abs=1e-4)
    # the overlay: one line per stream under the fused label makes the block taller
    two = {**f, "modality_probs": {"face": f["probs"], "landmarks": f["probs"]}}
    plain = {k: v for k, v in f.items() if k != "modality_probs"}
    tall = layout([two], p.label_names, 640, 480)[2][0]
    short = layout([plain], p.label_names, 640, 480)[2][0]
    assert tall[3] - tall[1] > short[3] - short[1]


def pipe_crop(pipe: LivePipeline, frame: np.ndarray) -> np.ndarray:
    from emomm.faces.crop import crop_face
    return crop_face(frame, pipe.tracks[0]["box"], pipe.face_size, margin=pipe.margin)
