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

from emomm.media.audio import AudioReadError, load_audio
from emomm.media.files import walk_files
from emomm.media.images import ImageReadError, load_image, read_image_rgb
from emomm.media.video import VideoReadError, read_frames
from tests.bad_inputs import (FER_CLASSES, bad_corpus, fer_tree, meld_tree, ravdess_tree,  # noqa: F401
                              write_corpus)

FIX_WORDS = ("re-download", "re-encode", "delete", "record again", "re-export")
UNREADABLE = {  # case -> the decoder of its kind
    "truncated_jpg": read_image_rgb, "zero_png": read_image_rgb,
    "truncated_wav": load_audio, "zero_wav": load_audio, "nan_wav": load_audio,
    "truncated_mp4": read_frames, "zero_mp4": read_frames,
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
    from emomm.data.ravdess import RavdessDataModule
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
    from emomm.data.fer2013 import Fer2013DataModule
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
    from emomm.data.fer2013 import Fer2013DataModule
    root = fer_tree(tmp_path, bad=False)
    (root / "train" / "bored").mkdir()
    with pytest.raises(ValueError) as err:
        Fer2013DataModule(str(root)).setup("fit")
    assert str(root / "train" / "bored") in str(err.value) and "not an emotion label" in str(err.value)


def test_meld_unknown_label_and_missing_or_broken_clips(tmp_path):
    from emomm.data.meld import MeldDataModule
    dm = MeldDataModule(str(meld_tree(tmp_path)), modalities=["text", "voice"], batch_size=4, load_workers=1)
    dm.setup("fit")
    assert dm.skipped["train"] == {"label outside the set": 1}         # the "bored" row
    assert dm.data_sizes["train"] == 28                                # every other row kept
    batch = next(iter(dm.train_dataloader()))                          # clips without voice: text alone
    assert batch["present"]["text"].all()
    from emomm.data.validate import validate_datamodule
    r = validate_datamodule(dm)
    assert r["splits"]["train"]["missing"] == 1                        # dia3_utt6.mp4, named by the CSV
    assert r["splits"]["train"]["clips"]["with_clip"] == 27 and r["skipped_at_load"]["n"] == 1


def test_non_utf8_csv_is_read_as_cp1252(tmp_path):
    from emomm.data.text_csv import TextCsvDataModule
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
    from emomm.data.fer2013 import Fer2013DataModule
    from emomm.data.ravdess import RavdessDataModule
    from emomm.data.validate import to_markdown, validate_datamodule

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
             "zero_mp4": p.predict_video}
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
    silent = p.predict_audio(c["silent_wav"])
    assert silent.error is None and np.isfinite(silent.probs).all()
    noface = Predictor.from_checkpoint(mm_ckpt, detector="haar").predict_video(c["noface_mp4"])
    assert noface.error.startswith("no face found"), noface.error


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
    for case in UNREADABLE:
        assert c[case].name in lines[c[case].name]["error"], lines[c[case].name]
    assert lines["noface.mp4"]["error"].startswith("no face found")
    assert not lines["silent.wav"].get("error")


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
