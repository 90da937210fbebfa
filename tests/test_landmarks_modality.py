"""The landmarks modality end to end on synthetic face meshes: the encoder on faces and clips,
training alone and fused ([face, landmarks], [video, landmarks, voice]) with subset reports and
missing-landmark masks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from emomm.data.synthetic.datamodule import SyntheticDataModule
from emomm.models.encoders.landmark_geometry import LandmarkEncoder
from emomm.runs.training import train
from tests.test_multimodal_train import FACE, SMALL, VIDEO

LANDMARKS = ["model.encoders.landmarks.hidden_size=32", "model.encoders.landmarks.num_heads=2"]


def test_encoder_takes_faces_and_padded_clips():
    enc = LandmarkEncoder(hidden_size=16, num_heads=2).eval()
    faces = torch.randn(3, 468, 3)
    out = enc.encode(faces)
    assert out.pooled.shape == (3, 16) and out.tokens.shape == (3, 1, 16)
    clips = torch.randn(2, 5, 468, 3)
    lengths = torch.tensor([5, 2])
    out = enc.encode(clips, lengths)
    assert out.pooled.shape == (2, 16) and out.mask.tolist()[1] == [True, True, False, False, False]
    # padding never changes a clip's embedding
    changed = clips.clone()
    changed[1, 2:] = 100.0
    assert torch.allclose(enc(changed, lengths), enc(clips, lengths), atol=1e-5)
    # a face is a one-frame clip
    assert torch.allclose(enc(faces), enc(faces[:, None], torch.ones(3, dtype=torch.long)), atol=1e-6)
    with pytest.raises(ValueError, match="landmarks.points"):
        enc(torch.randn(2, 478, 3))
    with pytest.raises(ValueError, match="temporal=none takes single faces"):
        LandmarkEncoder(hidden_size=16, temporal="none")(clips, lengths)


def test_synthetic_meshes_are_faces_or_clips_and_missing_is_masked():
    dm = SyntheticDataModule(["landmarks"], {"landmarks": {"points": 468}}, n_train=8, n_val=4, n_test=4,
                             missing={"landmarks": 0.0}, batch_size=4)
    dm.setup("fit")
    x = dm.splits["val"][3]["inputs"]["landmarks"]
    assert x.shape == (468, 3) and abs(float(x[[33, 133, 362, 263, 168, 6]].mean())) < 1e-5
    # the same sample is the same mesh; two emotions differ
    assert torch.equal(x, dm.splits["val"][3]["inputs"]["landmarks"])
    assert not torch.allclose(x, dm.splits["val"][2]["inputs"]["landmarks"])
    clips = SyntheticDataModule(["video", "landmarks"], {"video": {"num_frames": 4, "synthetic": {"clip_frames": 6}},
                                                          "landmarks": {}}, n_train=4, n_val=4, n_test=4)
    gen = clips._generators(False)["landmarks"]
    assert gen(clips.build_splits()["val"].spec(0, 0)).shape == (4, 468, 3)
    assert gen.describe()["num_frames"] == 4


def test_landmarks_alone_train_and_report(cfg_factory):
    cfg = cfg_factory(["modality=landmarks", *LANDMARKS, *SMALL, "debug=limit", "trainer.max_epochs=1"])
    summary = train(cfg)
    assert set(summary["test"]) >= {"acc", "uar"} and summary["data_sizes"]["test"] == 7


def test_face_and_landmarks_fuse_with_subsets_and_missing_landmarks(cfg_factory):
    cfg = cfg_factory(["modality=multimodal", "modalities=[face,landmarks]", *FACE, *LANDMARKS, *SMALL,
                       "debug=limit", "trainer.max_epochs=1", "data.missing={landmarks: 0.4}"])
    summary = train(cfg)
    assert set(summary["test_subsets"]) == {"face", "landmarks", "face+landmarks"}


def test_video_landmarks_voice_train(cfg_factory, tmp_path):
    cfg = cfg_factory(["modality=multimodal", "modalities=[video,landmarks,voice]", "fusion=attention",
                       *VIDEO, *LANDMARKS, *SMALL, "debug=fast_dev_run",
                       f"video.synthetic.cache_dir={tmp_path / 'clips'}"])
    summary = train(cfg)
    assert set(summary["test_modalities"]) == {"video", "landmarks", "voice"}
    assert "landmarks+video+voice" in summary["test_subsets"]


def landmark_enc(temporal: str) -> dict:
    return {"_target_": "emomm.models.encoders.landmark_geometry.LandmarkEncoder", "hidden_size": 16,
            "num_heads": 2, "temporal": temporal}


@pytest.mark.parametrize("temporal,clip", [("transformer", False), ("none", False), ("transformer", True),
                                           ("lstm", True)])
def test_onnx_export_matches_pytorch(tmp_path, temporal, clip):
    from emomm.inference.onnx_export import export
    from emomm.inference.onnx_runner import OnnxRunner
    from tests.test_export import FACE, small_module, torch_probs

    prep = {"landmarks": {"points": 468, "normalization": "stable-procrustes-v1", **({"num_frames": 4} if clip else {})}}
    encoders = {"landmarks": landmark_enc(temporal)}
    if not clip:   # a photo model fused with pixels, one face's landmarks missing
        encoders["face"], prep["face"] = FACE, {"image_size": 32, "in_chans": 1}
    m = small_module(encoders, fusion="ConcatFusion" if not clip else "IdentityFusion", preprocessing=prep)
    meta = export(module=m, out_dir=tmp_path)
    runner = OnnxRunner.from_export(tmp_path)
    if clip:
        x = {"landmarks": torch.randn(3, 4, 468, 3)}
        lengths = {"landmarks": torch.tensor([4, 4, 2] if temporal == "transformer" else [4, 4, 4])}
        present = {}
        assert meta["full_length"] == (["landmarks"] if temporal == "lstm" else [])
    else:
        x = {"landmarks": torch.randn(3, 468, 3), "face": torch.randn(3, 1, 32, 32)}
        lengths, present = {}, {"landmarks": torch.tensor([True, False, True]), "face": torch.ones(3, dtype=torch.bool)}
    batch = {"inputs": x, "lengths": lengths, "present": present}
    got = runner.probs(x, present=present or None, lengths=lengths or None)
    assert np.abs(got - torch_probs(m, batch)).max() <= 1e-4


def test_fer2013_landmarks_are_cached_with_missing_faces_counted(cfg_factory, fer_csv, monkeypatch, tmp_path):
    from emomm.data.datasets.fer2013 import read_fer_csv
    from tests.landmark_fixtures import no_face, use_fake_mesh

    fake = use_fake_mesh(monkeypatch)
    images, _, _ = read_fer_csv(fer_csv)
    lost = {s: [no_face(im) for im in images[s]] for s in ("train", "val")}
    assert 0 < sum(lost["train"]) < 30 and 0 < sum(lost["val"])
    common = ["data=fer2013", f"data.root={fer_csv.parent}", f"data.mesh_cache_dir={tmp_path / 'meshes'}", *LANDMARKS]
    summary = train(cfg_factory(["modality=landmarks", *common, "debug=fast_dev_run"]))
    # faces without a mesh are left out of training, scored in val/test
    assert summary["data_sizes"] == {"train": 70 - sum(lost["train"]), "val": 21, "test": 21}
    assert len(list((tmp_path / "meshes").glob("*.npz"))) == 3 and fake.calls > 0
    calls = fake.calls
    cfg = cfg_factory(["modality=multimodal", "modalities=[face,landmarks]", *FACE, *common, "debug=fast_dev_run"],
                      subdir="fused")
    summary = train(cfg)
    assert fake.calls == calls   # the meshes came from the cache
    assert summary["data_sizes"]["train"] == 70 and "face+landmarks" in summary["test_subsets"]
    from hydra.utils import instantiate
    dm = instantiate(cfg.data)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert batch["present"]["landmarks"].tolist() == [not x for x in lost["val"][:len(batch["label"])]]
    assert dm.preprocessing["landmarks"]["mesh"]["pad"] == 0.25 and dm.preprocessing["landmarks"]["points"] == 468


def test_predictor_reads_an_image_file_through_the_mesh(cfg_factory, monkeypatch, tmp_path):
    """image file -> (detector) -> crop -> mesh -> normalise -> encoder, in the Predictor, with
    the same probabilities as the network on the normalised mesh; torch and ONNX agree."""
    from PIL import Image

    from emomm.faces.landmark_norm import normalize_landmarks
    from emomm.inference.onnx_export import export
    from emomm.inference.predictor import Predictor
    from tests.landmark_fixtures import no_face, use_fake_mesh

    fake = use_fake_mesh(monkeypatch)
    cfg = cfg_factory(["modality=landmarks", *LANDMARKS, *SMALL, "debug=limit", "trainer.max_epochs=1"])
    train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    pred = Predictor.from_checkpoint(ckpt, detector="none")
    rng = np.random.default_rng(3)
    paths, padded, kinds = [], [], []
    while len(paths) < 6:   # three faces the (fake) mesh finds, three it misses
        img = np.clip(rng.normal(60 + 25 * len(paths), 20, (64, 64)), 0, 255).astype(np.uint8)
        crop = pred.crop_faces(np.repeat(img[..., None], 3, 2), None, whole=True)[0]
        k = int(round(0.25 * crop.shape[0]))
        c = np.pad(crop, ((k, k), (k, k), (0, 0)))
        if kinds.count(no_face(c)) >= 3:
            continue
        kinds.append(no_face(c))
        padded.append(c)
        paths.append(tmp_path / f"face{len(paths)}.png")
        Image.fromarray(img).save(paths[-1])
    results = [pred.predict_image(p) for p in paths]
    net = pred.runner.module.net.eval()
    for i, (r, c) in enumerate(zip(results, padded)):
        assert len(r.faces) == 1 and r.faces[0].probs == pytest.approx([1 / 7] * 7, abs=0.99)
        mesh = fake([c])[0]
        x = torch.zeros(1, 468, 3) if mesh is None else torch.from_numpy(normalize_landmarks(mesh))[None]
        with torch.no_grad():
            want = net({"landmarks": x}).softmax(-1)[0].numpy()
        assert np.abs(np.asarray(r.faces[0].probs) - want).max() < 1e-4
    export(ckpt_path=ckpt, out_dir=tmp_path / "onnx")
    onnx = Predictor.from_checkpoint(tmp_path / "onnx", backend="onnxruntime", detector="none")
    for r, p in zip(results, paths):
        assert np.abs(np.asarray(onnx.predict_image(p).faces[0].probs) - np.asarray(r.faces[0].probs)).max() < 1e-4


def test_video_folder_serves_per_frame_landmarks_beside_the_frames(tmp_path, monkeypatch):
    """video_folder (the base of the video datasets and face photos): each cached crop's mesh,
    cached per file; a clip's landmarks are the meshes of the frames its video input uses that
    have one; a clip without any is masked (beside video) or left out of training (alone)."""
    from emomm.data.core.collate import collate_samples
    from emomm.data.datasets.video_folder import VideoFolderDataModule
    from emomm.data.pipelines.face_clips import pick_frames
    from emomm.media.video import write_video
    from tests.landmark_fixtures import no_face, use_fake_mesh

    fake = use_fake_mesh(monkeypatch)
    rng = np.random.default_rng(0)
    for cls in ("anger", "joy"):
        for i in range(6):
            frames = np.clip(rng.normal(120, 40, (6, 24, 24, 3)), 0, 255).astype(np.uint8)
            write_video(tmp_path / "data" / cls / f"clip{i}.mp4", frames, fps=10)

    def dm(modalities):
        return VideoFolderDataModule(str(tmp_path / "data"), faces={"detector": "none", "cache_dir": str(tmp_path / "c"),
                                                           "workers": 0, "progress": False, "missing": "drop"},
                                     sampling={"step": 1}, num_frames=4, image_size=16, in_chans=1,
                                     val_fraction=0.25, test_fraction=0.25, seed=3, modalities=modalities,
                                     landmarks={"points": 468}, mesh_cache_dir=str(tmp_path / "m"))
    both = dm(["video", "landmarks"])
    both.setup()
    assert len(list((tmp_path / "m").glob("*.npz"))) == 12
    ds = both.splits["val"]
    for i in range(len(ds)):
        sample = ds[i]
        crops = ds.store.get(ds.items[i].path).crops
        idx = pick_frames(len(crops), 4, train=False)   # the frames evaluation uses
        k = int(round(0.25 * crops.shape[1]))
        want = [j for j in idx if not no_face(np.pad(crops[j], ((k, k), (k, k), (0, 0))))]
        if want:
            assert sample["inputs"]["landmarks"].shape == (len(want), 468, 3)
        else:
            assert "landmarks" not in sample["inputs"]
        assert sample["inputs"]["video"].shape == (4, 1, 16, 16)
    batch = collate_samples([ds[i] for i in range(len(ds))])
    assert batch["inputs"]["landmarks"].dim() == 4 and "landmarks" in batch["lengths"]
    assert both.preprocessing["landmarks"]["num_frames"] == 4
    calls = fake.calls
    alone = dm(["landmarks"])
    alone.setup()
    assert fake.calls == calls   # from the cache
    assert all(alone.splits["train"][i]["inputs"]["landmarks"].dim() == 3 for i in range(len(alone.splits["train"])))


def test_predictor_reads_a_video_file_as_landmark_clips(tmp_path, monkeypatch):
    """video file -> frames -> faces -> per-frame meshes -> one [T, P, 3] clip per window and
    track -> a landmarks clip model (the meshes of the window's frames, where found)."""
    from emomm.inference.predictor import Predictor
    from emomm.inference.runner import TorchRunner
    from emomm.media.video import write_video
    from tests.landmark_fixtures import use_fake_mesh
    from tests.test_export import small_module

    fake = use_fake_mesh(monkeypatch)
    prep = {"landmarks": {"points": 468, "normalization": "stable-procrustes-v1", "num_frames": 4}}
    m = small_module({"landmarks": landmark_enc("transformer")}, preprocessing=prep)
    rng = np.random.default_rng(1)
    frames = np.clip(rng.normal(120, 40, (20, 48, 48, 3)), 0, 255).astype(np.uint8)
    path = write_video(tmp_path / "clip.mp4", frames, fps=10)
    pred = Predictor(TorchRunner(m), detector="none", fps=10, window_s=1.0)
    assert pred.face_modality == "landmarks" and not pred.per_frame
    res = pred.predict_video(path)
    assert res.windows and fake.calls >= len(res.windows)
    for w in res.windows:
        assert len(w.probs) == 3 and abs(sum(w.probs) - 1) < 1e-5
    with torch.no_grad():
        empty = m.net({"landmarks": torch.zeros(1, 1, 468, 3)}).softmax(-1)[0].numpy()
    assert any(np.abs(np.asarray(w.probs) - empty).max() > 1e-4 for w in res.windows)
    # no mesh in any frame: landmarks alone score the empty mesh, as in evaluation
    pred._mesh = lambda crops: [None] * len(crops)
    for w in pred.predict_video(path).windows:
        assert np.abs(np.asarray(w.probs) - empty).max() < 1e-5


def test_meld_clips_serve_landmarks(tmp_path, monkeypatch):
    """MELD's clips: per-frame meshes of the cached crops (cached per clip), beside the text; an
    utterance whose clip is missing keeps its text alone."""
    from emomm.data.core.collate import collate_samples
    from emomm.data.datasets.meld import MeldDataModule
    from tests.landmark_fixtures import use_fake_mesh
    from tests.test_multimodal_data import FACES, _write_meld

    fake = use_fake_mesh(monkeypatch)
    root = tmp_path / "meld"
    _write_meld(root, with_clips=True)
    dm = MeldDataModule(str(root), modalities=["text", "video", "landmarks"], load_workers=1,
                        faces={**FACES, "cache_dir": str(tmp_path / "c")}, video={"image_size": 16, "num_frames": 2},
                        landmarks={"points": 468}, mesh_cache_dir=str(tmp_path / "m"))
    dm.setup()
    assert fake.calls > 0 and len(list((tmp_path / "m").glob("*.npz"))) == 22
    counts = dm.clip_counts["val"]
    assert 0 < counts["with_landmarks"] <= counts["with_clip"] == 11
    val = dm.splits["val"]
    with_lm = [val[i] for i in range(len(val)) if "landmarks" in val[i]["inputs"]]
    assert len(with_lm) == counts["with_landmarks"]
    assert all(s["inputs"]["landmarks"].dim() == 3 and s["inputs"]["landmarks"].shape[0] <= 2 for s in with_lm)
    assert set(val[len(val) - 1]["inputs"]) == {"text"}      # dia2_utt3: no clip
    batch = collate_samples([val[i] for i in range(len(val))])
    assert int(batch["present"]["landmarks"].sum()) == counts["with_landmarks"]
    assert dm.preprocessing["landmarks"]["num_frames"] == 2
