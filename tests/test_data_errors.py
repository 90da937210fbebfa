"""Training data that cannot serve as asked: broken tables, splits emptied by unreadable files,
folders that cannot be read, classes without a training sample and decompression bombs.
Each goes through the DataModule (setup), ``validate`` (report and exit code) and, where it
matters, a short training run: a clear error naming the file and the fix, or skipped and
counted, and the same count in the log, the error and the report."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from emomm.data.core.emotion_datamodule import DataError
from emomm.data.datasets.fer2013 import Fer2013DataModule
from emomm.data.datasets.meld import MeldDataModule
from emomm.data.datasets.ravdess import RavdessDataModule
from emomm.data.core.skips import UNREADABLE, UNREADABLE_FOLDER
from emomm.data.datasets.text_csv import TextCsvDataModule
from emomm.data.health import to_markdown, validate_datamodule
from emomm.media.images import ImageReadError
from tests.bad_inputs import deny_listing, fer_tree, meld_tree, ravdess_tree, write_bomb_png
from tests.conftest import make_cfg

ROOT = Path(__file__).resolve().parents[1]
FER_TINY = ["data=fer2013", "model/face_encoder=timm", "model.encoders.face.backbone=resnet10t",
            "face.image_size=32", "data.batch_size=8", "debug=limit", "trainer.max_epochs=1"]


def train_run(tmp_path: Path, overrides: list[str]) -> dict:
    from emomm.train import train
    tmp_path.mkdir(parents=True, exist_ok=True)
    try:
        return train(make_cfg("train", tmp_path, overrides))
    finally:
        GlobalHydra.instance().clear()


def rav(root: Path, **kw) -> RavdessDataModule:
    return RavdessDataModule(str(root), duration=0.4, load_workers=1, batch_size=8, **kw)


# -- 1. tables that do not parse, are empty or are not text ----------------------------------
GOOD_ROWS = "".join(f"fine day {i},happy\ngo away {i},angry\n" for i in range(4))
TABLES = {  # case -> (bytes, what the error says)
    "open_quote": (b'text,label\n"never closed,happy\n' + GOOD_ROWS.encode(), "line 2: a double quote opened"),
    "extra_field": (b"text,label\n" + GOOD_ROWS.encode() + b"one, two,happy\n", "line 10: 3 fields where the first row has 2"),
    "zero_bytes": (b"", "the table is empty (0 bytes)"),
    "blank_lines": (b"\n\n\n", "the table is empty (no header row"),
    "header_only": (b"text,label\n", "has a header (text, label) but no data row"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL bytes"),
}


@pytest.mark.parametrize("case", sorted(TABLES))
def test_broken_tables_are_named_in_the_validate_report(tmp_path, case):
    raw, says = TABLES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(raw)
    r = validate_datamodule(TextCsvDataModule(str(path)))          # no exception escapes
    assert not r["usable"] and len(r["problems"]) == 1, r
    msg = r["problems"][0]
    assert str(path) in msg and says in msg, msg
    assert "Traceback" not in msg and "pandas" not in msg and "C error" not in msg
    with pytest.raises(DataError) as err:                          # training: the same message
        TextCsvDataModule(str(path)).setup("fit")
    assert str(err.value) in msg


def test_meld_and_fer_csv_parse_errors_name_the_line(tmp_path):
    root = meld_tree(tmp_path, clips=False)
    train_csv = root / "train_sent_emo.csv"
    lines = train_csv.read_text().splitlines(keepends=True)
    lines[5] = lines[5].rstrip("\n") + ",extra,fields\n"
    train_csv.write_text("".join(lines))
    r = validate_datamodule(MeldDataModule(str(root)))
    assert not r["usable"] and f"{train_csv} line 6: 13 fields where the first row has 11" in r["problems"][0]

    fer = tmp_path / "fer" / "fer2013.csv"
    fer.parent.mkdir()
    fer.write_bytes(b"emotion,pixels,Usage\n3," + b"1 " * 2303 + b"1,Training\n\xff\xfe\x00broken\n")
    r = validate_datamodule(Fer2013DataModule(str(fer)))
    assert not r["usable"] and str(fer) in r["problems"][0] and "UTF-8" in r["problems"][0], r["problems"]


def test_bytes_neither_utf8_nor_cp1252_are_counted_and_named(tmp_path):
    path = tmp_path / "mixed.csv"
    rows = [f"fine day {i},happy\ngo away {i},angry\n" for i in range(6)]
    path.write_bytes(b"text,label\n" + b"caf\xe9 \x81 ok,happy\n" + "".join(rows).encode())
    dm = TextCsvDataModule(str(path), val_fraction=0.25, test_fraction=0.25)
    r = validate_datamodule(dm)
    texts = [t for s in ("train", "val", "test") for t in dm.splits[s].texts]
    assert any("caf\u00e9 \ufffd ok" in t for t in texts), texts     # cp1252 read; the undefined byte kept as U+FFFD
    assert {k: v for k, v in dm.repairs[str(path)].items() if v} == {"cp1252_byte": 1, "unrepairable": 1}
    warned = [w for w in r.get("warnings", []) if w.startswith(str(path))]
    assert any("1 characters could not be decoded" in w and "re-save it as UTF-8" in w for w in warned), r


@pytest.mark.slow  # two CLI starts: ~30-60 s on the loaded 2-core box
def test_train_and_validate_clis_exit_1_with_the_message_not_a_traceback(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(TABLES["extra_field"][0])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for module, extra in (("emomm.validate", [f"out={tmp_path / 'rep'}"]),
                          ("emomm.train", ["modality=text", "debug=fast_dev_run", "logger=csv"])):
        proc = subprocess.run([sys.executable, "-m", module, "data=text_csv", f"data.path={path}",
                               f"hydra.run.dir={tmp_path / module}", *extra],
                              capture_output=True, text=True, cwd=ROOT, env=env)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, out[-3000:]
        assert f"{path} line 10: 3 fields where the first row has 2" in out and "Traceback" not in out, out[-3000:]


# -- 2. a split that every file left ----------------------------------------------------------
def test_fer_val_split_of_unreadable_files_is_a_clear_error(tmp_path):
    root = fer_tree(tmp_path, bad=False)
    val = sorted((root / "val").rglob("*.jpg"))
    for f in val:
        f.write_bytes(b"not a jpeg")
    with pytest.raises(DataError) as err:
        Fer2013DataModule(str(root), image_size=32).setup("fit")
    msg = str(err.value)
    assert f"the val split of {root} is empty: all {len(val)} of its items were left out" in msg, msg
    assert f"({len(val)} unreadable) under {root / 'val'}" in msg and "re-download or delete it" in msg, msg
    r = validate_datamodule(Fer2013DataModule(str(root), image_size=32))
    assert not r["usable"] and msg in r["problems"], r["problems"]
    assert r["splits"]["val"]["unreadable"] == len(val)
    with pytest.raises(DataError) as run:                         # not an early-stopping error
        train_run(tmp_path / "run", FER_TINY + [f"data.root={root}"])
    assert str(run.value) == msg


def test_ravdess_val_actors_all_unreadable_says_how_many(tmp_path):
    root = ravdess_tree(tmp_path, actors=range(1, 5), symlinked=False, bad=False)
    for f in (root / "Actor_03").iterdir():
        f.write_bytes(b"RIFF\x10\x00\x00\x00WAVE")
    with pytest.raises(DataError, match=r"the val split \(speakers \[3\]\) has no readable clips: all 8 of its "
                                        r"clips could not be read, e\.g\. .*Actor_03.*delete it"):
        rav(root, train_speakers=[1, 2], val_speakers=[3], test_speakers=[4], allow_missing_classes=True).setup("fit")


# -- 3. folders that cannot be read -----------------------------------------------------------
def test_unreadable_actor_folder_is_an_error_unless_allowed(tmp_path, monkeypatch, caplog):
    root = ravdess_tree(tmp_path, actors=range(1, 7), symlinked=False, bad=False)
    deny_listing(monkeypatch, root / "Actor_03")
    with pytest.raises(DataError) as err:
        rav(root, allow_missing_classes=True).setup("fit")
    msg = str(err.value)
    assert str(root / "Actor_03") in msg and "chmod -R u+rX" in msg and "allow_unreadable_folders" in msg, msg

    r = validate_datamodule(rav(root))
    assert not r["usable"] and r["unreadable_folders"] == [str(root / "Actor_03")]
    assert any(str(root / "Actor_03") in p and "cannot be read" in p for p in r["problems"]), r["problems"]
    assert f"unreadable folder: {root / 'Actor_03'}" in to_markdown(r)

    with caplog.at_level(logging.WARNING, logger="emomm.data.core.emotion_datamodule"):
        dm = rav(root, allow_missing_classes=True, allow_unreadable_folders=True)
        dm.setup("fit")                                            # asked for: a warning naming it
    assert 3 not in {s for v in dm.split_speakers.values() for s in v}
    assert str(root / "Actor_03") in caplog.text and "allow_unreadable_folders=true" in caplog.text
    assert [s.item for s in dm.skips.select(UNREADABLE_FOLDER)] == [str(root / "Actor_03")]


def test_unreadable_fer_class_folder_is_counted_not_fatal_to_listing(tmp_path, monkeypatch):
    root = fer_tree(tmp_path, bad=False)
    deny_listing(monkeypatch, root / "train" / "sad")
    dm = Fer2013DataModule(str(root), image_size=32)
    with pytest.raises(DataError) as err:                        # sad lost its training images too
        dm.setup("fit")
    assert str(root / "train" / "sad") in str(err.value) and "['sad']" in str(err.value)
    r = validate_datamodule(Fer2013DataModule(str(root), image_size=32))
    assert r["unreadable_folders"] == [str(root / "train" / "sad")] and not r["usable"]


def _chmod_script(root: Path) -> str:
    return (f"import json, sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from emomm.data.datasets.ravdess import RavdessDataModule\n"
            "from emomm.data.health import validate_datamodule\n"
            f"r = validate_datamodule(RavdessDataModule({str(root)!r}, duration=0.4, load_workers=1), duplicates=False)\n"
            "print(json.dumps({k: r.get(k) for k in ('usable', 'problems', 'unreadable_folders')}))\n")


def test_chmod_000_actor_folder_for_real(tmp_path):
    """The real thing: ``chmod 000`` on an actor folder, read by a user whom permissions bind
    (this user, or ``nobody`` through ``setpriv`` when the tests run as root)."""
    as_root = os.geteuid() == 0
    if as_root and not shutil.which("setpriv"):
        pytest.skip("running as root (permissions do not apply) and no setpriv to drop them")
    base = Path(tempfile.mkdtemp(prefix="emomm-chmod-"))       # not under pytest's 0700 folder
    try:
        base.chmod(0o755)
        root = ravdess_tree(base, actors=range(1, 7), symlinked=False, bad=False)
        (root / "Actor_03").chmod(0)
        if as_root:
            proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                                   "-c", _chmod_script(root)], capture_output=True, text=True, cwd=base,
                                  env={**os.environ, "HOME": str(base), "OMP_NUM_THREADS": "1"})
            if proc.returncode and "Permission denied" in proc.stderr and "emomm" not in proc.stderr:
                pytest.skip(f"nobody cannot run this Python: {proc.stderr[-300:]}")
            assert proc.returncode == 0, proc.stderr[-3000:]
            r = json.loads(proc.stdout.strip().splitlines()[-1])
        else:
            r = validate_datamodule(RavdessDataModule(str(root), duration=0.4, load_workers=1), duplicates=False)
        assert not r["usable"] and r["unreadable_folders"] == [str(root / "Actor_03")], r
        assert any(str(root / "Actor_03") in p and "cannot be read" in p for p in r["problems"]), r["problems"]
    finally:
        for d in base.rglob("Actor_*"):
            d.chmod(0o755)
        shutil.rmtree(base)


# -- 4. a class without a training sample -----------------------------------------------------
def test_class_without_training_sample_is_an_error_unless_allowed(tmp_path, caplog):
    root = fer_tree(tmp_path, bad=False)
    for f in (root / "train" / "disgust").iterdir():
        f.unlink()
    with pytest.raises(DataError) as err:
        Fer2013DataModule(str(root), image_size=32).setup("fit")
    msg = str(err.value)
    assert "classes ['disgust'] have no sample in the train split" in msg and str(root) in msg, msg
    assert "++data.allow_missing_classes=true" in msg
    Fer2013DataModule(str(root), image_size=32).setup("test")  # evaluating needs no training sample
    with pytest.raises(DataError) as run:
        train_run(tmp_path / "run", FER_TINY + [f"data.root={root}"])
    assert str(run.value) == msg
    with caplog.at_level(logging.WARNING, logger="emomm.data.core.emotion_datamodule"):
        s = train_run(tmp_path / "allowed", FER_TINY + [f"data.root={root}", "++data.allow_missing_classes=true"])
    assert s["data_sizes"]["train"] == 18 and Path(s["best_ckpt"]).is_file()
    assert "classes ['disgust'] have no sample" in caplog.text and "allow_missing_classes=true" in caplog.text


# -- 5. the "unreadable" column and the log count the same files ------------------------------
def test_validate_unreadable_column_is_the_skip_count(tmp_path, caplog):
    root = ravdess_tree(tmp_path, actors=range(1, 7))
    dm = rav(root, fold=0, allow_missing_classes=True)
    with caplog.at_level(logging.WARNING):
        r = validate_datamodule(dm, decode="header")
    assert "skipped 3 of" in caplog.text                                # what training logs
    assert sum(s.get("unreadable", 0) for s in r["splits"].values()) == 3 == len(dm.skips.select(UNREADABLE))
    named = [f for s in r["splits"].values() for f in s.get("unreadable_files", [])]
    assert sorted(named) == sorted(s.message for s in dm.skips.select(UNREADABLE))
    assert r["skipped_at_load"]["by_reason"] == {UNREADABLE: 3}
    md = to_markdown(r)
    assert "Skipped while loading: 3 (3 unreadable)" in md


# -- 6. decompression bombs -------------------------------------------------------------------
def test_bomb_in_fer_folders_is_skipped_counted_and_named(tmp_path):
    root = fer_tree(tmp_path, bad=False)
    bombs = [write_bomb_png(root / "train" / "happy" / "bomb.png"), write_bomb_png(root / "val" / "sad" / "bomb.png")]
    dm = Fer2013DataModule(str(root), image_size=32)
    dm.setup("fit")
    assert dm.skipped == 2 and dm.data_sizes == {"train": 21, "val": 21, "test": 21}
    assert {(s.split, s.item) for s in dm.skips} == {("train", str(bombs[0])), ("val", str(bombs[1]))}
    r = validate_datamodule(Fer2013DataModule(str(root), image_size=32))
    assert r["splits"]["train"]["unreadable"] == 1 and r["splits"]["val"]["unreadable"] == 1
    assert str(bombs[0]) in r["splits"]["train"]["unreadable_files"][0]
    assert "decompression bomb" in r["splits"]["train"]["unreadable_files"][0]
    assert "or delete it" in r["splits"]["train"]["unreadable_files"][0]


def test_media_errors_and_bomb_warnings_are_skips_too(tmp_path, monkeypatch):
    """The media layer's ImageReadError (what it raises for images over its pixel bound) and
    PIL's DecompressionBombWarning where warnings are errors: skipped and counted."""
    import warnings

    from PIL import Image

    import emomm.data.pipelines.face_images as images
    root = fer_tree(tmp_path, bad=False)
    big = write_bomb_png(root / "train" / "fear" / "big.png", 12000, 12000)   # over MAX_IMAGE_PIXELS, under 2x
    over = root / "train" / "angry" / "0.jpg"
    real = images.load_image

    def bounded(path, mode="L"):
        if Path(path) == over:
            raise ImageReadError(f"{path}: 99999999 pixels, over the bound of 40000000; re-download or delete it")
        return real(path, mode)

    monkeypatch.setattr(images, "load_image", bounded)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        dm = Fer2013DataModule(str(root), image_size=32)
        dm.setup("fit")
    assert sorted(s.item for s in dm.skips.select(UNREADABLE)) == sorted([str(over), str(big)])
    assert dm.data_sizes["train"] == 20


# -- a table split without a test part --------------------------------------------------------
def test_text_csv_without_test_fraction_tests_on_val(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + GOOD_ROWS * 2)
    dm = TextCsvDataModule(str(path), test_fraction=0.0, val_fraction=0.25)
    dm.setup("test")
    assert dm.splits["test"] is dm.splits["val"] and len(dm.splits["val"]) > 0
