"""Video modality: decoding, the VideoEncoder, the video datasets and training end to end."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from emomm.media.video import (FrameSampling, VideoReadError, probe, read_audio, read_frames,
                               uniform_indices, write_video)
from emomm.models.encoders.video_temporal import VideoEncoder
from emomm.train import train
from tests.conftest import SHARED_DATA

CONTAINERS = ["mp4", "avi", "mkv", "webm", "flv"]
TINY_VIDEO = ["modality=video", "model.encoders.video.backbone=resnet10t", "model.encoders.video.hidden_size=32",
              "model.encoders.video.num_layers=1", "video.image_size=32", "video.num_frames=4"]


def ramp_frames(n: int = 30, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame t is a flat grey of brightness 8 t: the decoded content tells the frame number."""
    return np.repeat((np.arange(n, dtype=np.uint8) * 8)[:, None, None, None], h * w * 3).reshape(n, h, w, 3)


@pytest.fixture(scope="module")
def ramp_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("ramp")
    return {ext: write_video(root / f"ramp.{ext}", ramp_frames(), fps=15) for ext in CONTAINERS}


# -- decoding --------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["pyav", "opencv"])
@pytest.mark.parametrize("ext", CONTAINERS)
def test_video_decode_by_count_and_by_rate(ramp_videos, ext, backend):
    path = ramp_videos[ext]

    def frame_numbers(fr):  # from the content, independently of the reader's indices
        return np.round(fr.frames.reshape(len(fr), -1).mean(1) / 8).astype(int).tolist()

    every = read_frames(path, backend=backend)
    assert len(every) == every.num_decoded == 30 and every.frames.shape[1:] == (48, 64, 3)
    assert frame_numbers(every) == list(range(30))
    by_count = read_frames(path, num_frames=8, backend=backend)
    assert by_count.indices.tolist() == uniform_indices(30, 8).tolist() == [1, 5, 9, 13, 16, 20, 24, 28]
    assert frame_numbers(by_count) == by_count.indices.tolist()
    by_step = read_frames(path, step=4, backend=backend)
    assert by_step.indices.tolist() == list(range(0, 30, 4)) and frame_numbers(by_step) == list(range(0, 30, 4))
    by_fps = read_frames(path, fps=5, backend=backend)     # 15 fps file -> every third frame
    assert by_fps.indices.tolist() == list(range(0, 30, 3))
    np.testing.assert_allclose(np.diff(by_fps.times), 0.2, atol=1e-3)
    capped = read_frames(path, sampling={"step": 1, "max_frames": 5}, backend=backend)
    assert len(capped) == 5 and capped.indices[0] == 3 and capped.indices[-1] == 27
    longer = read_frames(path, num_frames=50, backend=backend)   # fewer frames than asked: all
    assert len(longer) == 30


def test_video_probe_and_errors(ramp_videos, tmp_path):
    info = probe(ramp_videos["mkv"])
    assert (info.width, info.height) == (64, 48) and info.fps == pytest.approx(15) and info.audio_codec is None
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoReadError, match="broken.mp4: cannot decode video"):
        read_frames(broken)
    with pytest.raises(VideoReadError, match="no such file"):
        read_frames(tmp_path / "absent.mp4")
    with pytest.raises(ValueError, match="one of num_frames / step / fps"):
        FrameSampling(num_frames=4, fps=2)


def test_video_audio_track_of_the_same_file(tmp_path):
    sr = 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32)
    path = write_video(tmp_path / "talk.mp4", ramp_frames(15), fps=15, audio=tone, audio_rate=sr)
    assert probe(path).audio_codec == "aac"
    wave, rate = read_audio(path, sample_rate=sr)
    assert rate == sr and abs(len(wave) - sr) < 0.1 * sr
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * sr / len(wave) - 440) < 5
    assert len(read_frames(path)) == 15


@pytest.mark.skipif(not (SHARED_DATA / "cremad_sample").is_dir(), reason="shared CREMA-D sample absent")
def test_video_real_cremad_flv_vp6_video_and_mp3_audio():
    path = SHARED_DATA / "cremad_sample" / "1001_DFA_ANG_XX.flv"
    info = probe(path)
    assert (info.video_codec, info.audio_codec, info.width, info.height) == ("vp6f", "mp3float", 480, 360)
    frames = read_frames(path)
    assert frames.num_decoded == 67 and frames.frames.std() > 10
    assert read_frames(path, backend="opencv").num_decoded == 67
    wave, sr = read_audio(path)
    assert sr == 44100 and 2.0 < len(wave) / sr < 2.4 and np.abs(wave).max() > 0.05


# -- encoder ---------------------------------------------------------------------------------
@pytest.mark.parametrize("temporal,extra", [("lstm", {}), ("lstm", {"pool": "mean", "bidirectional": False}),
                                            ("transformer", {}), ("transformer", {"positional": "learned"})])
def test_video_encoder_masks_padding(temporal, extra):
    torch.manual_seed(0)
    enc = VideoEncoder("resnet10t", in_chans=1, temporal=temporal, hidden_size=16, num_layers=2, **extra).eval()
    x = torch.randn(3, 5, 1, 32, 32)
    lengths = torch.tensor([5, 2, 1])
    with torch.no_grad():
        y = enc(x, lengths)
        noisy = x.clone()
        noisy[1, 2:] = 50.0
        noisy[2, 1:] = -50.0
        assert y.shape == (3, enc.out_dim)
        torch.testing.assert_close(enc(noisy, lengths), y, atol=1e-5, rtol=1e-5)   # padding ignored
        torch.testing.assert_close(enc(x[1:2, :2]), y[1:2], atol=1e-5, rtol=1e-5)  # = the unpadded clip
        assert not torch.allclose(enc(x[1:2, :3]), y[1:2], atol=1e-3)             # frames matter


def _face_checkpoint(tmp_path: Path, backbone="resnet10t", in_chans=1) -> Path:
    from emomm.models.module import EmotionModule

    module = EmotionModule(
        label_names=["angry", "happy"], fusion={"_target_": "emomm.models.fusion.IdentityFusion"},
        encoders={"face": {"_target_": "emomm.models.encoders.face_timm.FaceEncoder", "backbone": backbone,
                           "in_chans": in_chans}},
        optimizer={"_target_": "torch.optim.AdamW", "_partial_": True})
    path = tmp_path / "face.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path


def test_video_encoder_init_from_face_checkpoint_and_freeze(tmp_path):
    ckpt = _face_checkpoint(tmp_path)
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    enc = VideoEncoder("resnet10t", in_chans=1, init_from=str(ckpt), freeze=True, temporal="lstm", hidden_size=8)
    for k, v in enc.frame_encoder.state_dict().items():
        torch.testing.assert_close(v, state[f"net.encoders.face.{k}"])
    assert not any(p.requires_grad for p in enc.frame_encoder.parameters())
    assert all(p.requires_grad for p in enc.rnn.parameters())
    enc.train()
    assert not enc.frame_encoder.training and enc.rnn.training      # batch-norm statistics stay put
    enc(torch.randn(2, 3, 1, 32, 32), torch.tensor([3, 2])).sum().backward()
    with pytest.raises(ValueError, match="backbone='resnet10t'"):
        VideoEncoder("resnet18", in_chans=1, init_from=str(ckpt))


# -- training --------------------------------------------------------------------------------
@pytest.mark.parametrize("temporal", ["lstm", "transformer"])
def test_video_fast_dev_run_synthetic(cfg_factory, tmp_path, temporal):
    """Synthetic clips are written as MP4, decoded, cropped (given boxes) and cached."""
    syn = tmp_path / "syn"
    cfg = cfg_factory(TINY_VIDEO + [f"model/video_encoder={temporal}", f"video.synthetic.cache_dir={syn}",
                                    "video.synthetic.clip_frames=6", "data.n_train=14", "data.n_val=7",
                                    "data.n_test=7", "data.batch_size=7", "debug=fast_dev_run"])
    summary = train(cfg)
    assert set(summary["test"]) >= {"acc", "uar"}
    clips = list(syn.glob("*/s*/*.mp4"))
    assert len(clips) == 21 and all(Path(f"{c}.faces.json").is_file() for c in clips)
    assert len(list(syn.glob("crops/*/*.npz"))) == 21
    assert read_frames(clips[0]).num_decoded == 6


def face_video(path: Path, n: int = 6, face: bool = True, size=(120, 160)) -> Path:
    h, w = size
    src = cv2.resize(skimage.data.astronaut()[30:210, 150:300], (75, 90))
    frames = np.full((n, h, w, 3), 110, np.uint8)
    for t in range(n):
        if face:
            frames[t, 15: 105, 20 + 6 * t: 95 + 6 * t] = src
        else:
            frames[t] = np.random.default_rng(t).integers(90, 130, (h, w, 3), dtype=np.uint8)
    return write_video(path, frames, fps=10)


def test_video_cremad_clip_without_face_is_left_out_not_fatal(cfg_factory, tmp_path):
    root = tmp_path / "cremad" / "VideoFlash"
    root.mkdir(parents=True)
    for actor in (1001, 1002, 1003):
        for emo in ("ANG", "HAP"):
            face_video(root / f"{actor}_IEO_{emo}_HI.flv", n=4)
    face_video(root / "1003_IEO_SAD_XX.flv", n=4, face=False)
    cfg = cfg_factory(TINY_VIDEO + ["data=cremad_video", f"data.root={root.parent}", "faces.detector=haar",
                                    f"faces.cache_dir={tmp_path / 'cache'}", "faces.workers=0",
                                    "video.sampling.num_frames=4", "data.train_speakers=[1001]",
                                    "data.val_speakers=[1002]", "data.test_speakers=[1003]",
                                    "data.batch_size=2", "debug=fast_dev_run",
                                    "modalities=[video]",    # silent files: the frames alone
                                    "++data.allow_missing_classes=true"])   # angry and happy only
    summary = train(cfg)
    assert summary["data_sizes"] == {"train": 2, "val": 2, "test": 2}   # the faceless SAD clip left out
    assert summary["label_names"] == ["angry", "disgust", "fear", "happy", "neutral", "sad"]


def test_video_ravdess_layout_dedupe_and_speaker_splits(tmp_path):
    from emomm.data.datasets.ravdess_video import RavdessVideoDataModule

    frames = ramp_frames(3, 32, 32)
    for actor in range(1, 7):
        d = tmp_path / "deep" / ("Video_Speech" if actor < 4 else "more/nested") / f"Actor_{actor:02d}"
        for emo in (3, 5):
            for mod in ("01", "02"):   # the same recording twice: with and without audio
                write_video(d / f"{mod}-01-{emo:02d}-01-01-01-{actor:02d}.mp4", frames, fps=10)
        write_video(d / f"01-02-{3:02d}-01-01-01-{actor:02d}.mp4", frames, fps=10)   # song: filtered
    (tmp_path / "deep" / "Video_Speech" / "Actor_01" / "03-01-03-01-01-01-01.wav").write_bytes(b"")
    dm = RavdessVideoDataModule(str(tmp_path), faces={"detector": "none", "cache_dir": str(tmp_path / "c"),
                                                      "workers": 0, "progress": False},
                                val_speakers=[5], test_speakers=[6], image_size=16, num_frames=2)
    items = dm.list_items()
    assert len(items) == 12 and all(it.path.name.startswith("01-") for it in items)
    assert {dm.label_names[it.label] for it in items} == {"happy", "angry"}
    dm.setup()
    by_split = {k: {int(Path(p).stem[-2:]) for p in ds.paths} for k, ds in dm.splits.items()}
    assert by_split == {"train": {1, 2, 3, 4}, "val": {5}, "test": {6}}
    sample = dm.splits["train"][0]
    assert sample["inputs"]["video"].shape == (2, 3, 16, 16)
    assert RavdessVideoDataModule(str(tmp_path), merge_calm=True).label_names[0] == "neutral"
    folds = RavdessVideoDataModule(str(tmp_path), faces={"detector": "none", "cache_dir": str(tmp_path / "c"),
                                                         "workers": 0, "progress": False}, fold=1, n_folds=3,
                                   image_size=16)
    folds.setup()
    spk = {k: {int(Path(p).stem[-2:]) for p in ds.paths} for k, ds in folds.splits.items()}
    assert not (spk["train"] & spk["test"]) and not (spk["val"] & spk["test"]) and len(spk["test"]) == 2


def test_video_folder_layout_and_variable_length_batches(tmp_path):
    from emomm.data.core.collate import collate_samples
    from emomm.data.datasets.video_folder import VideoFolderDataModule

    for cls, exts in (("anger", ("mp4", "webm")), ("joy", ("avi", "mkv"))):
        for i in range(4):
            n = 3 if i % 2 else 6
            write_video(tmp_path / cls / f"clip{i}.{exts[i % 2]}", ramp_frames(n, 24, 24), fps=10)
    dm = VideoFolderDataModule(str(tmp_path), faces={"detector": "none", "cache_dir": str(tmp_path / "c"),
                                                     "workers": 0, "progress": False, "missing": "drop"},
                               sampling={"step": 1}, num_frames=None, image_size=16, in_chans=1,
                               val_fraction=0.25, test_fraction=0.25, seed=3)
    assert dm.label_names == ["angry", "happy"]
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 4, "val": 2, "test": 2}
    batch = collate_samples([dm.splits["train"][i] for i in range(4)])
    assert batch["inputs"]["video"].shape[1:] == (6, 1, 16, 16)
    assert sorted(batch["lengths"]["video"].tolist()) == [3, 3, 6, 6]


def test_video_face_photos_through_the_crop_path(cfg_factory, tmp_path):
    """Uncropped photos -> MTCNN -> cached crops -> modality=face training; a photo
    without a face is left out."""
    astro = skimage.data.astronaut()
    root = tmp_path / "photos"
    for c, cls in enumerate(("happy", "sad")):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            canvas = np.full((200, 240, 3), 60 + 40 * i, np.uint8)
            face = cv2.resize(astro[40:220, 150:300], (100, 120))
            canvas[30 + 10 * c: 150 + 10 * c, 20 + 25 * i: 120 + 25 * i] = face
            cv2.imwrite(str(root / cls / f"p{i}.jpg"), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "sad" / "wall.jpg"), np.full((200, 240, 3), 90, np.uint8))
    cfg = cfg_factory(["data=face_photos", f"data.root={root}", f"faces.cache_dir={tmp_path / 'cache'}",
                       "faces.workers=0", "model/face_encoder=timm", "model.encoders.face.backbone=resnet10t",
                       "face.image_size=32", "data.val_fraction=0.25", "data.test_fraction=0.25",
                       "data.batch_size=4", "debug=fast_dev_run"])
    summary = train(cfg)
    assert sum(summary["data_sizes"].values()) == 8    # 9 photos, the wall left out
    assert summary["label_names"] == ["happy", "sad"]


# -- configs -----------------------------------------------------------------------------------
def test_video_configs_compose_and_build(cfg_factory, tmp_path):
    from hydra.utils import instantiate

    from emomm.runs.training import build_module

    conf = Path(__file__).resolve().parents[1] / "conf"
    for i, enc in enumerate(sorted(p.stem for p in (conf / "model" / "video_encoder").glob("*.yaml"))):
        cfg = cfg_factory(["modality=video", f"model/video_encoder={enc}", "data.n_train=7", "data.n_val=7",
                           "data.n_test=7"], subdir=f"enc{i}")
        module = build_module(cfg, instantiate(cfg.data))
        assert module.hparams.encoders["video"]["temporal"] == enc
        assert module.hparams.preprocessing["video"]["num_frames"] == cfg.video.num_frames
    for i, det in enumerate(sorted(p.stem for p in (conf / "faces").glob("*.yaml"))):
        cfg = cfg_factory([f"faces={det}"], subdir=f"faces{i}")
        assert cfg.faces.detector == det and cfg.faces.size == 112
    assert cfg_factory(["faces.detector=haar"], subdir="fd").faces.detector == "haar"
    for i, data in enumerate(["ravdess_video", "cremad_video", "video_folder"]):
        cfg = cfg_factory(["modality=video", f"data={data}", f"data.root={tmp_path}"], subdir=f"d{i}")
        dm = instantiate(cfg.data)
        assert dm.store.settings["detector"] == "mtcnn" and dm.num_frames == cfg.video.num_frames
    cfg = cfg_factory(["data=face_photos", f"data.root={tmp_path}"], subdir="photos")
    assert instantiate(cfg.data).modality == "face"
    cfg = cfg_factory(["data=face_photos"], config_name="prepare", subdir="prep")
    assert cfg.data.image_size == 64


def test_video_synthetic_face_size_and_its_former_name(tmp_path):
    """``video.synthetic.face_size`` sizes the cached crops; ``crop_size``, its name in
    checkpoints written before 2026-12-06, still means the same; a typo is refused."""
    from emomm.data.synthetic.video_modality import SyntheticVideo
    for key in ("face_size", "crop_size"):
        video = SyntheticVideo({"synthetic": {key: 40, "cache_dir": str(tmp_path)}}, train=False)
        assert video.syn["face_size"] == 40 and "crop_size" not in video.syn
        assert video.store.crop_options["size"] == 40
    with pytest.raises(ValueError, match="face_sise"):
        SyntheticVideo({"synthetic": {"face_sise": 40}}, train=False)
