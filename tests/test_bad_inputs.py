"""Every bad input of :mod:`tests.bad_inputs` in every layer: decoding, training (DataModule
setup + a batch, and a short fit), eval, predict (Predictor and the CLI), prepare, validate
and the web server. Each case is a clear error naming the file and the fix, or is skipped and
counted; nothing crashes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emomm.data.core.skips import SkipLog
from emomm.media.audio import AudioReadError, load_audio
from emomm.media.files import walk_files
from emomm.media.images import ImageReadError, load_image, read_image_rgb
from emomm.media.video import VideoReadError, read_frames
from tests.bad_inputs import (FER_CLASSES, bad_corpus, fer_tree, meld_tree, ravdess_tree,  # noqa: F401
                              write_corpus)
from tests.conftest import fer_image

FIX_WORDS = ("re-download", "re-encode", "delete", "record again", "re-export")
UNREADABLE = {  # case -> the decoder of its kind
    "truncated_jpg": read_image_rgb, "zero_png": read_image_rgb,
    "truncated_wav": load_audio, "zero_wav": load_audio, "nan_wav": load_audio,
    "truncated_mp4": read_frames, "zero_mp4": read_frames,
    "bomb_png": read_image_rgb, "bomb_header_png": read_image_rgb, "big_png": read_image_rgb,
    "rate1_wav": load_audio,
}


def names_file_and_fix(msg: str, path: Path) -> bool:
    return str(path) in msg and any(w in msg.lower() for w in FIX_WORDS)


# -- decoding (emomm/media) -----------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_media_is_a_clear_error(bad_corpus, case):
    path = bad_corpus[case]
    with pytest.raises((ImageReadError, AudioReadError, VideoReadError)) as err:
        UNREADABLE[case](path)
    assert names_file_and_fix(str(err.value), path), str(err.value)


def test_image_bombs_are_refused_from_their_header(bad_corpus, tmp_path):
    """Every way an image is decoded (datasets, predictor, web uploads) checks the header's
    size first: no 400 MP allocation, the error names the file; the bound is configurable
    and bounds video frames too."""
    import io
    import tracemalloc

    from emomm.data.pipelines.face_images import read_class_folders
    from emomm.media.images import ImageTooLargeError, decode_image
    from emomm.serve.decode import image_rgb
    from emomm.serve.errors import BadInput
    tracemalloc.start()
    for case in ("bomb_png", "bomb_header_png", "big_png"):
        path = bad_corpus[case]
        for decode in (read_image_rgb, load_image, lambda p: decode_image(io.BytesIO(p.read_bytes()), name=p)):
            with pytest.raises(ImageTooLargeError) as err:
                decode(path)
            assert str(path) in str(err.value) and "max_pixels" in str(err.value), str(err.value)
        with pytest.raises(BadInput) as err:
            image_rgb(path.read_bytes(), "upload.png")
        assert err.value.status == 413 and "upload.png" in str(err.value.message)
    assert tracemalloc.get_traced_memory()[1] < 20e6   # nothing decoded (400 MP would be 400 MB)
    tracemalloc.stop()
    with pytest.raises(ImageTooLargeError):   # the bound is an argument: a 48x48 image above 2000
        read_image_rgb(bad_corpus["rgba_png"], max_pixels=2000)
    assert read_image_rgb(bad_corpus["rgba_png"], max_pixels=48 * 48).shape == (48, 48, 3)
    with pytest.raises(VideoReadError) as err:   # video frames: 48x48 > 1000
        read_frames(bad_corpus["noface_mp4"], num_frames=2, max_pixels=1000)
    assert "noface.mp4" in str(err.value) and "max_pixels" in str(err.value)
    from emomm.live.stream import open_video
    with pytest.raises(ValueError, match="noface.mp4: the video frame is 48x48 = 2,304 pixels"):
        open_video(bad_corpus["noface_mp4"], max_pixels=1000)
    # a dataset folder skips them and counts them
    d = tmp_path / "fer" / "happy"
    d.mkdir(parents=True)
    for case in ("bomb_png", "bomb_header_png", "png16"):
        (d / bad_corpus[case].name).write_bytes(bad_corpus[case].read_bytes())
    skips = SkipLog()
    images, _, _ = read_class_folders(tmp_path / "fer", ["happy"], workers=1, skips=skips)
    assert len(images) == 1 and sorted(Path(s.item).name for s in skips) == ["bomb.png", "bomb_header.png"]


def test_rgba_16bit_and_silence_decode_to_their_content(bad_corpus):
    rgba = read_image_rgb(bad_corpus["rgba_png"])
    assert rgba.shape == (48, 48, 3) and rgba.dtype == np.uint8
    # 16-bit: the face's mean brightness (~120 for label 3) survives; clipping gave ~255.
    g16 = load_image(bad_corpus["png16"])
    assert g16.shape == (48, 48) and 100 < g16.mean() < 140, g16.mean()
    assert abs(read_image_rgb(bad_corpus["png16"]).mean() - g16.mean()) < 1
    wave, sr = load_audio(bad_corpus["silent_wav"])
    assert sr == 16000 and len(wave) == 16000 and not wave.any()


def test_walk_follows_symlinked_folders_and_survives_loops(tmp_path):
    root = ravdess_tree(tmp_path, actors=range(1, 3), bad=False)
    files = walk_files(root, {".wav"})
    # 2 actors x 8 files, each once although Actor_01/loop leads back to the root.
    assert len(files) == 16 and len(set(files)) == 16
    assert all(f.parent.name.startswith("Actor_") for f in files)  # paths keep the link names


# -- training data (DataModule setup + a batch) -----------------------------------------------
def test_ravdess_symlinked_actors_and_bad_wavs(tmp_path):
    from emomm.data.datasets.ravdess import RavdessDataModule
    root = ravdess_tree(tmp_path)
    dm = RavdessDataModule(str(root), duration=0.4, fold=0, load_workers=1, batch_size=8,
                           allow_missing_classes=True)   # the tree records 4 of the 8 emotions
    dm.setup("fit")
    assert sum(dm.data_sizes.values()) == 6 * 8       # every good clip, found through the links
    assert len(dm.skipped) == 3                        # truncated, 0-byte, NaN: skipped and counted
    for bad in ("03-01-02-01-01-01-01.wav", "03-01-02-01-01-02-01.wav", "03-01-02-02-01-01-01.wav"):
        assert any(bad in s and "delete it" in s for s in dm.skipped), dm.skipped
    batch = next(iter(dm.train_dataloader()))
    assert batch["inputs"]["voice"].shape == (8, 6400) and torch_finite(batch["inputs"]["voice"])


def torch_finite(x) -> bool:
    import torch
    return bool(torch.isfinite(x).all())


def test_fer_folders_with_bad_images(tmp_path):
    from emomm.data.datasets.fer2013 import Fer2013DataModule
    dm = Fer2013DataModule(str(fer_tree(tmp_path)), image_size=32, batch_size=4)
    dm.setup("fit")
    assert dm.skipped == 3 and dm.data_sizes["train"] == 7 * 3 + 2   # + RGBA and 16-bit read
    happy = dm.root / "train" / "happy"
    assert sorted(s.item for s in dm.skips) == [str(happy / n) for n in ("bomb.png", "truncated.jpg", "zero.png")]
    paths = dm.splits["train"].paths
    g16 = dm.splits["train"].images[next(i for i, p in enumerate(paths) if p.endswith("gray16.png"))]
    assert 100 < g16.mean() < 140
    batch = next(iter(dm.train_dataloader()))
    assert batch["inputs"]["face"].shape == (4, 1, 32, 32)


def test_unknown_label_folder_is_a_clear_error(tmp_path):
    from emomm.data.datasets.fer2013 import Fer2013DataModule
    root = fer_tree(tmp_path, bad=False)
    (root / "train" / "bored").mkdir()
    with pytest.raises(ValueError) as err:
        Fer2013DataModule(str(root)).setup("fit")
    assert str(root / "train" / "bored") in str(err.value) and "not an emotion label" in str(err.value)


def test_meld_unknown_label_and_missing_or_broken_clips(tmp_path):
    from emomm.data.datasets.meld import MeldDataModule
    dm = MeldDataModule(str(meld_tree(tmp_path)), modalities=["text", "voice"], batch_size=4, load_workers=1)
    dm.setup("fit")
    assert dm.skipped["train"] == {"label outside the set": 1}         # the "bored" row
    assert dm.data_sizes["train"] == 28                                # every other row kept
    batch = next(iter(dm.train_dataloader()))                          # clips without voice: text alone
    assert batch["present"]["text"].all()
    from emomm.data.health import validate_datamodule
    r = validate_datamodule(dm)
    assert r["splits"]["train"]["missing"] == 1                        # dia3_utt6.mp4, named by the CSV
    assert r["splits"]["train"]["clips"]["with_clip"] == 27 and r["skipped_at_load"]["n"] == 1


def test_non_utf8_csv_is_read_as_cp1252(tmp_path):
    from emomm.data.datasets.text_csv import TextCsvDataModule
    path = tmp_path / "mixed.csv"
    rows = [("I\x92m so happy caf\xe9", "happy")] + [(f"fine day {i}", "happy") for i in range(5)] + \
           [(f"go away {i}", "angry") for i in range(6)]
    path.write_bytes(b"text,label\n" + b"".join(f"{t},{y}\n".encode("latin-1") for t, y in rows))
    dm = TextCsvDataModule(str(path), text_column="text", label_column="label", val_fraction=0.25,
                           test_fraction=0.25, batch_size=2)
    dm.setup("fit")
    texts = [t for s in ("train", "val", "test") for t in dm.splits[s].texts]
    assert len(texts) == 12 and any("caf\u00e9" in t for t in texts), texts


# -- validate ----------------------------------------------------------------------------------
def test_validate_counts_bad_files_speakers_and_duplicates(tmp_path):
    from emomm.data.datasets.fer2013 import Fer2013DataModule
    from emomm.data.datasets.ravdess import RavdessDataModule
    from emomm.data.health import to_markdown, validate_datamodule

    r = validate_datamodule(RavdessDataModule(str(ravdess_tree(tmp_path)), duration=0.4, fold=0, load_workers=1))
    assert r["skipped_at_load"]["n"] == 3 and any("03-01-02-02-01-01-01.wav" in f for f in r["skipped_at_load"]["first"])
    # The tiny tree records 4 of the 8 emotions: unusable, and the report says which are absent.
    assert not r["usable"] and len(r["problems"]) == 1, r["problems"]
    assert "classes ['calm', 'fear', 'disgust', 'surprise'] have no sample in the train split" in r["problems"][0]
    assert "++data.allow_missing_classes=true" in r["problems"][0]
    assert r["splits"]["train"]["unreadable"] + r["splits"]["val"]["unreadable"] + r["splits"]["test"].get("unreadable", 0) == 3
    assert sum(s["n"] for s in r["splits"].values()) == 48 and r["speakers"]["overlap"] == {}

    root = fer_tree(tmp_path / "f", bad=False)
    src = root / "train" / "happy" / "0.jpg"
    (root / "val" / "sad" / "copy.jpg").write_bytes(src.read_bytes())   # same pixels, other label
    r = validate_datamodule(Fer2013DataModule(str(root)))
    d = r["duplicates"]
    assert d["cross_split_groups"] == 1 and d["conflicting_cross_split_groups"] == 1
    assert r["splits"]["test"] == {"same_as": "val", "n": 22}
    assert "conflicting" in to_markdown(r)


@pytest.mark.slow  # a CLI start: ~20-40 s on the loaded 2-core box
def test_validate_cli_exits_1_when_a_class_is_missing_from_train(tmp_path):
    root = fer_tree(tmp_path, bad=False)
    for f in (root / "train" / "disgust").iterdir():
        f.unlink()
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "emomm.validate", "data=fer2013", f"data.root={root}",
                           f"out={out}", f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr[-2000:]
    report = json.loads((out / "validate.json").read_text())
    assert not report["usable"] and "disgust" in report["problems"][0]
    assert (out / "validate.md").read_text().startswith("# Data validation")


# -- a model for train / eval / predict / serve ----------------------------------------------
FER_TINY = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=32",
            "data.batch_size=8", "debug=limit", "trainer.max_epochs=1"]


@pytest.fixture(scope="module")
def fer_run(tmp_path_factory):
    """A 1-epoch fit + test on a FER tree holding truncated, 0-byte, RGBA and 16-bit images."""
    from hydra.core.global_hydra import GlobalHydra

    from emomm.train import train
    from tests.conftest import make_cfg
    base = tmp_path_factory.mktemp("fer_bad")
    root = fer_tree(base)
    (base / "run").mkdir()
    summary = train(make_cfg("train", base / "run", ["data=fer2013", f"data.root={root}"] + FER_TINY))
    GlobalHydra.instance().clear()
    return {"root": root, "summary": summary, "base": base}


def test_training_and_eval_on_data_with_bad_files(fer_run):
    from hydra.core.global_hydra import GlobalHydra

    from emomm.eval import evaluate
    from tests.conftest import make_cfg
    s = fer_run["summary"]
    assert Path(s["best_ckpt"]).is_file() and 0 <= s["test"]["acc"] <= 1
    assert s["data_sizes"]["train"] == 23                              # 3 unreadable (a bomb) skipped
    (fer_run["base"] / "eval").mkdir()
    ev = evaluate(make_cfg("eval", fer_run["base"] / "eval", [f"ckpt_path={s['best_ckpt']}", "data=fer2013",
                                                              f"data.root={fer_run['root']}"]))
    GlobalHydra.instance().clear()
    assert 0 <= ev["metrics"]["acc"] <= 1


@pytest.fixture(scope="module")
def mm_ckpt(tmp_path_factory):
    """A tiny face + voice + text checkpoint (synthetic data)."""
    from hydra.core.global_hydra import GlobalHydra

    from emomm.train import train
    from tests.conftest import make_cfg
    from tests.test_predictor import MM
    ckpt = train(make_cfg("train", tmp_path_factory.mktemp("mm_bad"), MM + ["test=false"]))["best_ckpt"]
    GlobalHydra.instance().clear()
    return ckpt


def test_predictor_on_every_bad_input(mm_ckpt, tmp_path):
    from emomm import Predictor
    c = write_corpus(tmp_path / "bad")
    p = Predictor.from_checkpoint(mm_ckpt, detector="none", batch_size=4)
    calls = {"truncated_jpg": p.predict_image, "zero_png": p.predict_image, "truncated_wav": p.predict_audio,
             "zero_wav": p.predict_audio, "nan_wav": p.predict_audio, "truncated_mp4": p.predict_video,
             "zero_mp4": p.predict_video, "bomb_png": p.predict_image, "bomb_header_png": p.predict_image,
             "big_png": p.predict_image, "one_sample_wav": p.predict_audio, "rate1_wav": p.predict_audio}
    for case, fn in calls.items():
        try:
            res = fn(c[case])
        except ValueError as err:  # the media layer's error, naming the file and the fix
            assert names_file_and_fix(str(err), c[case]), (case, str(err))
        else:
            assert res.error and str(c[case].name) in (res.error + str(res.source)), (case, res)
    for case in ("rgba_png", "png16"):
        res = p.predict_image(c[case])
        assert res.error is None and len(res.faces) == 1, case
    with pytest.raises(ValueError, match=r"1 Hz, outside the 4000-384000 Hz"):
        p.predict_audio(c["rate1_wav"])
    with pytest.raises(ValueError, match=r"only 1 sample \(0.1 ms\)"):
        p.predict_audio(c["one_sample_wav"])
    # silence: no emotion, and the result says why (the same for a waveform, as the server sends)
    for silent in (p.predict_audio(c["silent_wav"]), p.predict_audio(np.zeros(8000, np.float32), 16000)):
        assert silent.error.startswith("no speech detected: the recording is silent (digital silence")
        assert silent.label is None and silent.probs == [] and silent.windows == []
    with pytest.raises(ValueError, match="1 Hz"):
        p.predict_audio(np.ones(100, np.float32), 1)
    noface = Predictor.from_checkpoint(mm_ckpt, detector="haar").predict_video(c["noface_mp4"])
    assert noface.error.startswith("no face found"), noface.error
    assert noface.label is None and noface.probs == []   # not a uniform guess labelled "angry"


def test_no_speech_is_said_not_labelled(mm_ckpt, tmp_path):
    """``vad``: energy (default) withholds the label of silence only; silero (live mode's
    detector) also of a tone; off predicts anyway. A video's silent track is left out."""
    from emomm import Predictor
    from emomm.media.video import write_video
    from tests.voice_fixtures import tone
    rng = np.random.default_rng(1)
    beep = tone(440, 16000, 1.0, rng)
    p = Predictor.from_checkpoint(mm_ckpt, detector="none", batch_size=4)
    assert p.predict_audio(beep, 16000).label in p.label_names
    quiet = p.predict_audio(beep * 1e-3, 16000)   # -73 dBFS: quieter than a quiet room
    assert quiet.label is None and "its loudest 32 ms is at -73 dBFS" in quiet.error, quiet.error
    soft = p.predict_audio(beep * 1e-2, 16000)   # -53 dBFS: as loud as RAVDESS's softest sad takes
    assert soft.label in p.label_names, soft.error
    assert Predictor(p.runner, vad="off").predict_audio(np.zeros(16000, np.float32), 16000).label in p.label_names
    pytest.importorskip("silero_vad")
    res = Predictor(p.runner, vad="silero").predict_audio(beep, 16000)
    assert res.label is None and res.error.startswith("no speech detected (the silero voice activity"), res.error
    frames = np.repeat(np.stack([fer_image(3, rng)] * 10)[..., None], 3, axis=3)
    clip = write_video(tmp_path / "mute.mp4", frames, fps=10, audio=np.zeros(16000, np.float32))
    res = p.predict_video(clip)   # the faces alone: no voice head, no audio timeline
    assert res.label in p.label_names and res.windows and not res.audio and res.error is None
    assert all("voice" not in w.modality_probs and "face" in w.modality_probs for w in res.windows)
    loud = write_video(tmp_path / "loud.mp4", frames, fps=10, audio=beep)
    assert all("voice" in w.modality_probs for w in p.predict_video(loud).windows)


def test_predict_file_on_text_that_looks_like_media(mm_ckpt, tmp_path):
    """A .txt is text whatever its first bytes; BOMs say the encoding; a real PNG named .txt
    is a clear error, never predicted on as mojibake."""
    from emomm import Predictor
    from emomm.inference.batch import media_kind, predict_file
    c = write_corpus(tmp_path / "bad")
    p = Predictor.from_checkpoint(mm_ckpt, detector="none", batch_size=4)
    expect = {"riff_txt": "RIFF....WAVE what a lovely day, I am so happy",
              "utf16_txt": "I am so happy, caf\u00e9 na\u00efve", "utf8bom_txt": "I am so happy, caf\u00e9"}
    for case, text in expect.items():
        assert media_kind(c[case]) == "text"
        rec = predict_file(p, c[case])
        assert not rec.get("error") and rec["text"] == text and rec["label"] in rec["label_names"], rec
    rec = predict_file(p, c["png_txt"])
    assert names_file_and_fix(rec["error"], c["png_txt"]) and "its bytes are a PNG image" in rec["error"], rec
    assert "label" not in rec
    # the suffix breaks no tie the bytes settle, and a mismatch is said in the error
    wav_named_png = tmp_path / "voice.png"
    wav_named_png.write_bytes(c["truncated_wav"].read_bytes())
    rec = predict_file(p, wav_named_png)
    assert rec["kind"] == "audio" and "its bytes are audio but its suffix .png says image" in rec["error"]
    text_named_png = tmp_path / "note.png"
    text_named_png.write_text("BMW drivers are so happy")   # "BM" is the BMP magic
    assert media_kind(text_named_png) == "image" and "cannot read image" in predict_file(p, text_named_png)["error"]


@pytest.mark.slow  # a CLI start plus MTCNN-free prediction: ~25 s on the loaded 2-core box
def test_predict_cli_on_the_corpus(mm_ckpt, tmp_path):
    c = write_corpus(tmp_path / "bad")
    c.pop("cp1252_csv").unlink()
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "emomm.predict", f"ckpt_path={mm_ckpt}", f"inputs=[{c['zero_png'].parent}]",
                           f"hydra.run.dir={out}", "predictor.detector=haar"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = {Path(x["input"]).name: x for x in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())}
    assert set(lines) == {p.name for p in c.values()}
    for case in list(UNREADABLE) + ["one_sample_wav", "png_txt"]:
        assert c[case].name in lines[c[case].name]["error"], lines[c[case].name]
    assert lines["noface.mp4"]["error"].startswith("no face found")
    assert lines["silent.wav"]["error"].startswith("no speech detected") and lines["silent.wav"]["label"] is None
    for case in ("riff_txt", "utf16_txt", "utf8bom_txt"):
        assert not lines[c[case].name].get("error"), lines[c[case].name]
    assert lines["utf16.txt"]["text"] == "I am so happy, caf\u00e9 na\u00efve"
    # one line per bad file naming it, no traceback, no PIL warning; the summary lists every file
    said = proc.stdout + proc.stderr   # hydra logs to stdout
    assert "Traceback" not in said and "DecompressionBomb" not in said, said[-3000:]
    for case in ("bomb_png", "bomb_header_png", "rate1_wav", "one_sample_wav", "png_txt"):
        assert sum(str(c[case]) in line for line in said.splitlines()) == 1, (case, said[-3000:])
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + len(c) and any(r.startswith(f"{c['bomb_png']},image,,,,") for r in summary), summary


def test_prepare_counts_unreadable_and_faceless_videos(cfg_factory, tmp_path):
    from emomm.prepare import prepare
    c = write_corpus(tmp_path / "bad")
    root = tmp_path / "videos"
    (root / "happy").mkdir(parents=True)
    for case in ("truncated_mp4", "zero_mp4", "noface_mp4"):
        c[case].rename(root / "happy" / c[case].name)
    cache = tmp_path / "cache"
    base = ["data=video_folder", f"data.root={root}", "faces=haar", f"faces.cache_dir={cache}", "workers=1"]
    report = prepare(cfg_factory(base, config_name="prepare", subdir="prep"))
    assert report["failed"] == 2 and report["clips_no_face"] == 1
    assert any("truncated.mp4" in f for f in report["failed_files"]), report
    assert list(cache.glob("*/*.npz"))                              # the faceless clip's entry
    cleared = prepare(cfg_factory(base + ["clear=true"], config_name="prepare", subdir="clear"))
    assert cleared["deleted"] == 1 and not list(cache.glob("*/*.npz"))


# -- the web server -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(mm_ckpt):
    from fastapi.testclient import TestClient

    from emomm.serve.app import create_app
    from emomm.serve.engine import ServeEngine
    return TestClient(create_app(ServeEngine.from_checkpoint(mm_ckpt)))


@pytest.mark.parametrize("case,endpoint", [
    ("truncated_jpg", "image"), ("zero_png", "image"), ("truncated_wav", "audio"), ("zero_wav", "audio"),
    ("nan_wav", "audio"), ("truncated_mp4", "video"), ("zero_mp4", "video"), ("cp1252_csv", "image"),
    ("bomb_png", "image"), ("bomb_header_png", "image"), ("one_sample_wav", "audio"), ("rate1_wav", "audio"),
])
def test_server_answers_bad_uploads_with_4xx_json(client, tmp_path, case, endpoint):
    c = write_corpus(tmp_path / "bad")
    r = client.post(f"/api/predict/{endpoint}", files={"file": (c[case].name, c[case].read_bytes())})
    assert 400 <= r.status_code < 500, (case, r.status_code, r.text)
    assert r.json()["error"]["message"]
    assert client.get("/api/model").status_code == 200               # still alive


def test_server_reads_rgba_16bit_and_silence(client, tmp_path):
    c = write_corpus(tmp_path / "bad")
    for case in ("rgba_png", "png16"):
        assert client.post("/api/predict/image", files={"file": (c[case].name, c[case].read_bytes())}).status_code == 200
    r = client.post("/api/predict/audio", files={"file": ("silent.wav", c["silent_wav"].read_bytes())})
    assert r.status_code == 200, r.text
    assert r.json()["note"].startswith("no speech detected") and r.json()["clip"]["label"] is None, r.json()
