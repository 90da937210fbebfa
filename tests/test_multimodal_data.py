"""Paired multimodal data for fusion: modality contracts, synthetic reliability/missing,
audio-visual clips (frames and sound from one file), paired real corpora, MELD clips."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emomm.data.core.collate import collate_samples
from emomm.data.synthetic import SyntheticDataModule
from emomm.media.video import probe, read_audio, write_video

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


# -- contract ---------------------------------------------------------------------------------
def test_require_modalities_names_dataset_missing_and_available():
    dm = SyntheticDataModule(modalities=["face"], n_train=7, n_val=7, n_test=7)
    assert dm.available_modalities == ["face", "landmarks", "text", "video", "voice"]
    dm.require_modalities(["face", "voice"])          # available, though not served now

    from emomm.data.datasets.fer2013 import Fer2013DataModule
    fer = Fer2013DataModule("/nonexistent")
    assert fer.available_modalities == ["face", "landmarks"]
    with pytest.raises(ValueError) as err:
        fer.require_modalities(["face", "voice", "text"])
    msg = str(err.value)
    assert "Fer2013" in msg and "['voice', 'text']" in msg and "it has ['face', 'landmarks']" in msg


# -- synthetic --------------------------------------------------------------------------------
def test_synthetic_reliability_and_missing_rates_are_measurable():
    dm = SyntheticDataModule(modalities=["face", "voice", "text"], n_train=1400, n_val=7, n_test=7,
                             reliability={"face": 0.8, "voice": 0.5, "text": 0.3},
                             missing={"face": 0.2, "voice": 0.5}, seed=1)
    dm.setup()
    ds = dm.splits["train"]
    plans = [ds.plan(i) for i in range(len(ds))]
    agree = {m: np.mean([e[m] == ds.labels[i] for i, (_, e) in enumerate(plans)]) for m in dm.modalities}
    absent = {m: np.mean([m not in k for k, _ in plans]) for m in dm.modalities}
    assert abs(agree["face"] - 0.8) < 0.04 and abs(agree["voice"] - 0.5) < 0.05 and abs(agree["text"] - 0.3) < 0.05
    assert abs(absent["face"] - 0.2) < 0.04 and abs(absent["voice"] - 0.5) < 0.05 and absent["text"] == 0
    assert all(k for k, _ in plans)
    # A wrong modality expresses some *other* emotion, spread over the other classes.
    wrong = [e["text"] for i, (_, e) in enumerate(plans) if e["text"] != ds.labels[i]]
    assert len(set(wrong)) == 7
    # Seeded: same plan again, another seed differs; the served sample follows the plan.
    assert ds.plan(5) == plans[5]
    s = ds[next(i for i, (k, _) in enumerate(plans) if "voice" not in k)]
    assert "voice" not in s["inputs"] and s["inputs"]
    batch = collate_samples([ds[i] for i in range(8)])
    assert batch["present"]["face"].tolist() == ["face" in plans[i][0] for i in range(8)]
    # Every sample keeps one modality even at missing=1.
    allgone = SyntheticDataModule(modalities=["face", "text"], n_train=20, n_val=7, n_test=7, missing=1.0)
    allgone.setup()
    assert all(len(allgone.splits["val"].plan(i)[0]) == 1 for i in range(7))


def test_synthetic_defaults_unchanged_and_bad_options():
    a = SyntheticDataModule(modalities=["text"], n_train=7, n_val=7, n_test=7)
    a.setup()
    assert all(a.splits["train"].plan(i)[1]["text"] == i % 7 for i in range(7))
    with pytest.raises(ValueError, match="probabilities"):
        SyntheticDataModule(modalities=["face"], reliability=1.5)
    with pytest.raises(ValueError, match="unknown modalities"):
        SyntheticDataModule(modalities=["face"], missing={"smell": 0.1})


def test_synthetic_video_clips_carry_the_voice_decoded_from_the_file(tmp_path):
    cache = tmp_path / "syn"
    dm = SyntheticDataModule(
        modalities=["video", "voice"], n_train=3, n_val=2, n_test=2, reliability={"voice": 0.0},
        options={"video": {"image_size": 32, "num_frames": 4, "synthetic": {"clip_frames": 6, "cache_dir": str(cache)}},
                 "voice": {"duration": 1.0, "sample_rate": 16000}})
    dm.setup()
    s = dm.splits["val"][1]
    assert s["inputs"]["video"].shape == (4, 1, 32, 32) and s["inputs"]["voice"].shape == (16000,)
    assert set(dm.preprocessing) == {"video", "voice"}
    clip = next(cache.glob("*/s*/0000001_*.mp4"))
    info = probe(clip)
    assert info.audio_codec == "aac" and info.num_frames == 6
    # reliability 0 for the voice: the track in the file says another emotion than the frames.
    v_emotion, a_emotion = clip.stem.split("_")[1], clip.stem.split("_a")[-1]
    assert v_emotion != a_emotion
    # The served voice is the file's own track (centre crop of it), not a fresh synthesis.
    wave, _ = read_audio(clip, 16000)
    served = s["inputs"]["voice"].numpy()
    n = min(len(wave), 16000)
    start = max(0, (len(wave) - 16000) // 2)
    ref = wave[start:start + n] if len(wave) >= 16000 else wave
    got = served[:len(ref)] if len(wave) >= 16000 else served[(16000 - len(wave)) // 2:][:len(wave)]
    assert np.abs(got - ref).max() < 2e-3
    # Frames alone: no audio track written.
    silent = SyntheticDataModule(modalities=["video"], n_train=2, n_val=2, n_test=2,
                                 options={"video": {"image_size": 32, "num_frames": 4,
                                                    "synthetic": {"clip_frames": 6, "cache_dir": str(tmp_path / "s2")}}})
    silent.setup()
    silent.splits["test"][0]
    assert probe(next((tmp_path / "s2").glob("*/s*/*.mp4"))).audio_codec is None


# -- audio-visual real datasets ---------------------------------------------------------------
FACES = {"detector": "none", "workers": 0, "progress": False}
TONES = {"ANG": 300.0, "HAP": 600.0, "SAD": 900.0}


def _tone(freq: float, seconds: float = 1.0, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _frames(n: int = 6, size: int = 32, level: int = 100) -> np.ndarray:
    return np.full((n, size, size, 3), level, np.uint8) + np.arange(n, dtype=np.uint8)[:, None, None, None] * 10


def _peak_hz(wave: torch.Tensor | np.ndarray, sr: int = 16000) -> float:
    w = np.asarray(wave, np.float64)
    spec = np.abs(np.fft.rfft(w * np.hanning(len(w))))
    return float(np.fft.rfftfreq(len(w), 1 / sr)[spec.argmax()])


def test_cremad_video_yields_frames_and_voice_from_one_flv(tmp_path):
    from emomm.data.datasets.cremad_video import CremadVideoDataModule

    root = tmp_path / "VideoFlash"
    for actor in (1001, 1002, 1003):
        for emo in ("ANG", "HAP"):
            write_video(root / f"{actor}_IEO_{emo}_HI.flv", _frames(), fps=10, audio=_tone(TONES[emo]))
    write_video(root / "1003_IEO_SAD_HI.flv", _frames(), fps=10)   # no sound track
    common = dict(faces={**FACES, "cache_dir": str(tmp_path / "c")}, image_size=16, num_frames=4,
                  sampling={"num_frames": 4}, train_speakers=[1001], val_speakers=[1002],
                  test_speakers=[1003], voice={"sample_rate": 16000, "duration": 0.5})
    dm = CremadVideoDataModule(str(tmp_path), modalities=["video", "voice"], **common)
    assert dm.available_modalities == ["video", "voice", "landmarks"]
    dm.setup()
    assert dm.data_sizes == {"train": 2, "val": 2, "test": 2}        # the silent SAD clip left out
    assert dm.excluded["no_audio"] == [str(root / "1003_IEO_SAD_HI.flv")]
    assert set(dm.preprocessing) == {"video", "voice"}
    for split in ("train", "val"):
        for i, path in enumerate(dm.splits[split].paths):
            s = dm.splits[split][i]
            assert s["inputs"]["video"].shape == (4, 3, 16, 16) and s["inputs"]["voice"].shape == (8000,)
            if split == "val":   # the voice is this file's own track (its tone)
                assert abs(_peak_hz(s["inputs"]["voice"]) - TONES[Path(path).stem.split("_")[2]]) < 25

    # omit: the silent clip stays, without a voice; frames only: no audio decoded.
    omit = CremadVideoDataModule(str(tmp_path), modalities=["video", "voice"], missing_audio="omit", **common)
    omit.setup()
    test = omit.splits["test"]
    silent = test.paths.index(str(root / "1003_IEO_SAD_HI.flv"))
    assert "voice" not in test[silent]["inputs"] and "video" in test[silent]["inputs"]
    assert collate_samples([test[i] for i in range(len(test))])["present"]["voice"].sum() == 2
    frames_only = CremadVideoDataModule(str(tmp_path), modalities=["video"], **common)
    frames_only.setup()
    assert set(frames_only.splits["train"][0]["inputs"]) == {"video"} and set(frames_only.preprocessing) == {"video"}
    with pytest.raises(ValueError, match=r"cannot provide modalities \['text'\].*it has \['video', 'voice', 'landmarks'\]"):
        CremadVideoDataModule(str(tmp_path), modalities=["video", "text"], **common).setup()


def test_ravdess_video_pairs_02_files_with_their_03_audio(tmp_path):
    import soundfile as sf

    from emomm.data.datasets.ravdess_video import RavdessVideoDataModule

    tone_of = {3: 400.0, 5: 800.0}
    for actor in (1, 2, 3):
        vdir = tmp_path / "Video_Speech" / f"Actor_{actor:02d}"
        adir = tmp_path / "Audio_Speech_Actors_01-24" / f"Actor_{actor:02d}"
        adir.mkdir(parents=True)
        # happy: an 01 audio-video file; angry: an 02 video-only file + its 03 audio file.
        write_video(vdir / f"01-01-03-01-01-01-{actor:02d}.mp4", _frames(), fps=10, audio=_tone(tone_of[3]))
        write_video(vdir / f"02-01-05-01-01-01-{actor:02d}.mp4", _frames(), fps=10)
        sf.write(adir / f"03-01-05-01-01-01-{actor:02d}.flac", _tone(tone_of[5], sr=48000), 48000)
    # An 02 file whose 03 file is absent: no voice.
    write_video(tmp_path / "Video_Speech" / "Actor_03" / "02-01-05-02-01-01-03.mp4", _frames(), fps=10)
    dm = RavdessVideoDataModule(str(tmp_path), faces={**FACES, "cache_dir": str(tmp_path / "c")},
                                modalities=["video", "voice"], voice={"duration": 0.5}, image_size=16,
                                num_frames=2, val_speakers=[2], test_speakers=[3])
    items = dm.list_items()
    paired = {it.path.name: it.audio for it in items if it.path.name.startswith("02-")}
    assert paired["02-01-05-01-01-01-01.mp4"].name == "03-01-05-01-01-01-01.flac"
    assert paired["02-01-05-02-01-01-03.mp4"] is None
    dm.setup()
    assert dm.data_sizes == {"train": 2, "val": 2, "test": 2}       # the unpaired 02 file left out
    for split, ds in dm.splits.items():
        for i in range(len(ds)):
            s = ds[i]
            emo = int(Path(ds.paths[i]).name.split("-")[2])
            assert s["inputs"]["video"].shape == (2, 3, 16, 16)
            if split != "train":
                assert abs(_peak_hz(s["inputs"]["voice"]) - tone_of[emo]) < 25


def test_video_folder_with_sound_and_voice_only_without_cropping(tmp_path):
    from emomm.data.datasets.video_folder import VideoFolderDataModule

    for cls, f in (("angry", 300.0), ("happy", 700.0)):
        for i in range(4):
            write_video(tmp_path / "v" / cls / f"c{i}.mp4", _frames(4), fps=10, audio=_tone(f, 0.6))
    kw = dict(faces={**FACES, "cache_dir": str(tmp_path / "c")}, image_size=16, num_frames=2,
              val_fraction=0.25, test_fraction=0.25, voice={"duration": 0.5})
    dm = VideoFolderDataModule(str(tmp_path / "v"), modalities=["video", "voice"], **kw)
    dm.setup()
    batch = collate_samples([dm.splits["val"][i] for i in range(2)])
    assert batch["inputs"]["video"].shape == (2, 2, 3, 16, 16) and batch["inputs"]["voice"].shape == (2, 8000)
    assert sorted(round(_peak_hz(w), -2) for w in batch["inputs"]["voice"]) == [300, 700]
    voice_only = VideoFolderDataModule(str(tmp_path / "v"), modalities=["voice"],
                                       **{**kw, "faces": {**FACES, "cache_dir": str(tmp_path / "c2")}})
    voice_only.setup()
    assert set(voice_only.splits["train"][0]["inputs"]) == {"voice"} and set(voice_only.preprocessing) == {"voice"}
    assert not (tmp_path / "c2").exists() or not any((tmp_path / "c2").rglob("*.npz"))


@pytest.mark.skipif(not (SHARED / "cremad_sample").is_dir(), reason="no /work/shared/data/cremad_sample")
def test_real_cremad_flv_clips_yield_video_and_voice(tmp_path):
    from emomm.data.datasets.cremad_video import CremadVideoDataModule
    from emomm.data.pipelines.face_clips import FaceClipDataset
    from emomm.data.pipelines.transforms import FrameTransform

    dm = CremadVideoDataModule(str(SHARED / "cremad_sample"), modalities=["video", "voice"],
                               faces={**FACES, "cache_dir": str(tmp_path / "c")}, image_size=32,
                               num_frames=4, sampling={"num_frames": 4}, voice={"duration": 2.0})
    items = dm.list_items()
    assert len(items) == 6 and {it.path.suffix for it in items} == {".flv"}
    waves = dm._decode_audio({"all": items})           # the MP3 track of each FLV
    assert all(w is not None and len(w) > 16000 for w in waves.values())
    dm.store.prepare([it.path for it in items])        # the VP6 frames
    ds = FaceClipDataset(items, dm.store, FrameTransform(image_size=32, in_chans=3), num_frames=4,
                         waves=[waves[it.path] for it in items], clip=dm.clip)
    for i in range(len(ds)):
        s = ds[i]
        assert s["inputs"]["video"].shape == (4, 3, 32, 32) and s["inputs"]["voice"].shape == (32000,)
        assert float(s["inputs"]["voice"].abs().max()) > 0.01      # real speech, not silence


# -- label-paired real corpora ----------------------------------------------------------------
@pytest.fixture
def fer_and_ravdess(tmp_path):
    from tests.conftest import FER_ORDER, write_fer_folders
    from tests.voice_fixtures import write_ravdess_tree

    fer = write_fer_folders(tmp_path / "fer", FER_ORDER, splits=("train", "val"), per_class=6)
    rav = tmp_path / "ravdess"
    info = write_ravdess_tree(rav, actors=range(1, 7), seconds=0.3)
    return fer, rav, info


def _paired(fer, rav, **kw):
    from emomm.data.datasets.paired import PairedDataModule

    args = dict(train_speakers=[1, 2, 3, 4], val_speakers=[5], test_speakers=[6], load_workers=1,
                voice={"duration": 0.5}, face={"image_size": 48, "in_chans": 1}, seed=3)
    return PairedDataModule(str(fer), str(rav), **{**args, **kw})


def test_paired_sizes_classes_and_label_agreement(fer_and_ravdess):
    from emomm.data.core.splits import dataset_labels
    from emomm.labels import FER2013, RAVDESS

    fer, rav, _ = fer_and_ravdess
    dm = _paired(fer, rav)
    assert dm.label_names == list(FER2013) and dm.available_modalities == ["face", "voice"]
    dm.setup()
    # 7 non-calm speech utterances per actor (+ actor 2's audio-video angry take) x 4 faces.
    assert dm.data_sizes == {"train": (4 * 7 + 1) * 4, "val": 7, "test": 7}
    assert set(dm.preprocessing) == {"face", "voice"}
    for split, ds in dm.splits.items():
        face_labels, voice_labels = dataset_labels(ds.faces), dataset_labels(ds.voices)
        for f, v, y in zip(ds.face_idx, ds.voice_idx, ds.labels):
            assert FER2013[face_labels[f]] == RAVDESS[voice_labels[v]] == dm.label_names[y]
    s = dm.splits["train"][0]
    assert s["inputs"]["face"].shape == (1, 48, 48) and s["inputs"]["voice"].shape == (8000,)
    # Faces of a class are used evenly (6 per class in the FER train split).
    train = dm.splits["train"]
    uses = {}
    for f, y in zip(train.face_idx, train.labels):
        uses.setdefault(y, {}).setdefault(f, 0)
        uses[y][f] += 1
    assert all(max(u.values()) - min(u.values()) <= 1 for u in uses.values())
    merged = _paired(fer, rav, calm="merge")
    merged.setup()
    assert merged.pair_counts["val"]["neutral"] == 2 and merged.data_sizes["val"] == 8
    # modalities=[face]: only faces served; a modality paired lacks is a clear error.
    face_only = _paired(fer, rav, modalities=["face"])
    face_only.setup()
    assert set(face_only.splits["val"][0]["inputs"]) == {"face"}
    with pytest.raises(ValueError, match=r"Paired cannot provide modalities \['text'\].*\['face', 'voice'\]"):
        _paired(fer, rav, modalities=["face", "text"]).setup()


def test_paired_splits_never_share_faces_or_voices_and_are_seeded(fer_and_ravdess):
    fer, rav, _ = fer_and_ravdess
    dm = _paired(fer, rav, pairs_per_clip=2)
    dm.setup()
    faces = {k: {ds.faces.paths[i] for i in ds.face_idx} for k, ds in dm.splits.items()}
    voices = {k: {ds.voices.paths[i] for i in ds.voice_idx} for k, ds in dm.splits.items()}
    speakers = {k: set(ds.speakers) for k, ds in dm.splits.items()}
    assert speakers == {"train": {1, 2, 3, 4}, "val": {5}, "test": {6}}
    assert all(Path(p).parent.parent.name == "train" for p in faces["train"])
    assert all(Path(p).parent.parent.name == "val" for p in faces["val"] | faces["test"])
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not faces[a] & faces[b] and not voices[a] & voices[b]
    again = _paired(fer, rav, pairs_per_clip=2)
    again.setup()
    other = _paired(fer, rav, pairs_per_clip=2, seed=4)
    other.setup()
    assert again.splits["train"].face_idx == dm.splits["train"].face_idx
    assert other.splits["train"].face_idx != dm.splits["train"].face_idx


@pytest.mark.skipif(not (SHARED / "fer2013").is_dir() or not (SHARED / "ravdess").is_dir(),
                    reason="no /work/shared/data fer2013 + ravdess")
def test_paired_on_the_real_corpora():
    from emomm.data.datasets.paired import PairedDataModule

    dm = PairedDataModule(str(SHARED / "fer2013"), str(SHARED / "ravdess"), train_speakers=[1, 2],
                          val_speakers=[3], test_speakers=[4], voice={"duration": 1.0}, limit_per_split=40)
    dm.setup()
    assert all(35 <= n <= 40 for n in dm.data_sizes.values())      # limit_per_split (stratified)
    # 2 actors x 52 non-calm speech clips x 4 faces before the limit; 52 x 1 for val and test.
    assert sum(dm.pair_counts["train"].values()) == 2 * 52 * 4 and sum(dm.pair_counts["val"].values()) == 52
    batch = collate_samples([dm.splits["val"][i] for i in range(4)])
    assert batch["inputs"]["face"].shape == (4, 1, 48, 48) and batch["inputs"]["voice"].shape == (4, 16000)


# -- MELD with and without its clips ---------------------------------------------------------
MELD_HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"


def _write_meld(root: Path, with_clips: bool) -> None:
    emotions = ["joy", "anger", "neutral", "sadness"]
    sr = 1
    for split, csv_name, clip_dir in (("train", "train_sent_emo.csv", "train/train_splits"),
                                      ("dev", "dev_sent_emo.csv", "dev/dev_splits_complete")):
        rows = []
        for dlg in range(3):
            for utt in range(4):
                emo = emotions[(dlg + utt) % 4]
                rows.append(f'{sr},"I feel {emo} today, utterance {utt}.",Ross,{emo},neutral,{dlg},{utt},1,1,0,1\n')
                sr += 1
                if with_clips and not (dlg == 2 and utt == 3):       # one clip absent
                    freq = 300 + 100 * emotions.index(emo)
                    write_video(root / clip_dir / f"dia{dlg}_utt{utt}.mp4", _frames(4), fps=10,
                                audio=_tone(freq, 0.6))
        root.mkdir(parents=True, exist_ok=True)
        (root / csv_name).write_text(MELD_HEADER + "".join(rows))
    if with_clips:   # a clip without a sound track: text + video only
        write_video(root / "dev/dev_splits_complete/dia0_utt0.mp4", _frames(4), fps=10)


def test_meld_with_clip_folders_serves_text_video_voice(tmp_path):
    from emomm.data.datasets.meld import MeldDataModule

    root = tmp_path / "meld"
    _write_meld(root, with_clips=True)
    kw = dict(faces={**FACES, "cache_dir": str(tmp_path / "c")}, video={"image_size": 16, "num_frames": 2},
              voice={"duration": 0.5}, load_workers=1)
    dm = MeldDataModule(str(root), modalities=["text", "video", "voice"], **kw)
    assert dm.available_modalities == ["text", "video", "voice", "landmarks"]
    assert len(dm.crop_sources()) == 22              # what `python -m emomm.prepare data=meld` crops
    dm.setup()
    assert dm.data_sizes == {"train": 12, "val": 12, "test": 12}
    assert dm.clip_counts["train"] == {"utterances": 12, "with_clip": 11, "with_video": 11, "with_voice": 11}
    assert dm.clip_counts["val"] == {"utterances": 12, "with_clip": 11, "with_video": 11, "with_voice": 10}
    assert set(dm.preprocessing) == {"text", "video", "voice"}
    val = dm.splits["val"]
    s = val[0]    # dia0_utt0 of dev: its clip has no sound
    assert set(s["inputs"]) == {"text", "video"} and s["inputs"]["video"].shape == (2, 3, 16, 16)
    last = val[len(val) - 1]    # dia2_utt3: no clip at all
    assert set(last["inputs"]) == {"text"}
    s = val[1]
    assert set(s["inputs"]) == {"text", "video", "voice"} and "utterance 1" in s["inputs"]["text"]
    emo = s["inputs"]["text"].split("feel ")[1].split()[0]
    assert abs(_peak_hz(s["inputs"]["voice"]) - (300 + 100 * ["joy", "anger", "neutral", "sadness"].index(emo))) < 25
    batch = collate_samples([val[i] for i in range(len(val))])
    assert batch["present"]["voice"].sum() == 10 and batch["present"]["video"].sum() == 11
    assert len(batch["inputs"]["text"]) == 12
    # voice only: utterances without usable audio are left out.
    voice_only = MeldDataModule(str(root), modalities=["voice"], **kw)
    voice_only.setup()
    assert voice_only.data_sizes["val"] == 10 and set(voice_only.splits["val"][0]["inputs"]) == {"voice"}


def test_meld_without_clip_folders_is_text_only(tmp_path):
    from emomm.data.datasets.meld import MeldDataModule
    from emomm.data.pipelines.text_data import TextDataset

    root = tmp_path / "meld"
    _write_meld(root, with_clips=False)
    dm = MeldDataModule(str(root))
    assert dm.available_modalities == ["text"]
    dm.setup()
    assert isinstance(dm.splits["train"], TextDataset) and set(dm.splits["train"][0]["inputs"]) == {"text"}
    with pytest.raises(ValueError, match=r"Meld cannot provide modalities \['voice'\].*it has \['text'\]"):
        MeldDataModule(str(root), modalities=["text", "voice"]).setup()


# -- configs -------------------------------------------------------------------------------------
def test_data_configs_pass_modalities_and_voice_options(cfg_factory, tmp_path):
    from hydra.utils import instantiate

    cfg = cfg_factory(["modality=video", "modalities=[video,voice]", "++voice.sample_rate=8000",
                       "++voice.duration=1.5", "data=cremad_video", f"data.root={tmp_path}"], subdir="av")
    dm = instantiate(cfg.data)
    assert dm.modalities == ["video", "voice"] and dm.clip.sample_rate == 8000 and dm.clip.duration == 1.5
    cfg = cfg_factory(["modality=video", f"data.root={tmp_path}", "data=ravdess_video"], subdir="frames")
    assert instantiate(cfg.data).modalities == list(cfg.modalities)
    cfg = cfg_factory(["modality=voice", "data=paired", "modalities=[face,voice]"], subdir="paired")
    dm = instantiate(cfg.data)
    assert dm.modalities == ["face", "voice"] and dm.face_args["image_size"] == 48 and dm.face_args["in_chans"] == 1
    assert dm.clip.sample_rate == cfg.voice.sample_rate and dm.label_names[0] == "angry"
    cfg = cfg_factory(["modality=text", "data=meld", f"data.root={tmp_path}"], subdir="meld")
    dm = instantiate(cfg.data)
    assert dm.modalities == ["text"] and dm.available_modalities == ["text"]
    cfg = cfg_factory(["modality=voice", "data=synthetic", "data.reliability=0.5", "data.missing={voice: 0.1}"],
                      subdir="syn")
    dm = instantiate(cfg.data)
    assert dm.reliability == {"voice": 0.5} and dm.missing == {"voice": 0.1}
    cfg = cfg_factory(["data=face_photos", f"data.root={tmp_path}"], config_name="prepare", subdir="prep")
    assert instantiate(cfg.data).available_modalities == ["face", "landmarks"]
