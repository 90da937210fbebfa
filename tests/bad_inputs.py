"""A corpus of bad inputs, written by the tests in each format's real on-disk form.

:func:`write_corpus` writes every case into one folder and returns their paths by name;
:func:`ravdess_tree`, :func:`fer_tree` and :func:`meld_tree` build tiny datasets in the
published layouts with bad files mixed among good ones (and, for RAVDESS, ``Actor_NN``
folders that are symlinks, plus a symlink loop). The ``bad_corpus`` fixture is the corpus
under the test's ``tmp_path``.

Cases (name -> what):

* ``truncated_jpg`` / ``zero_png``: half a JPEG; a 0-byte PNG.
* ``truncated_wav`` / ``zero_wav``: a WAV cut inside its header; a 0-byte WAV.
* ``truncated_mp4`` / ``zero_mp4``: the first 300 bytes of an MP4; a 0-byte MP4.
* ``nan_wav``: a float WAV holding NaNs; ``silent_wav``: one second of digital silence.
* ``rgba_png``: an RGBA face; ``png16``: a 16-bit grey PNG (values up to 65535).
* ``cp1252_csv``: a text CSV with cp1252 bytes (not UTF-8).
* ``noface_mp4``: a valid video of flat grey frames (no face anywhere).
* ``bomb_png``: a valid 20000x20000 1-bit PNG of 50 kB (400 MP once decoded);
  ``bomb_header_png``: only a PNG header claiming 20000x20000, then garbage;
  ``big_png``: 10000x10000 (100 MP: above PIL's warning, below its own error).
* ``one_sample_wav``: a WAV of one sample; ``rate1_wav``: a WAV whose header says 1 Hz.
* ``riff_txt``: a note that starts with ``RIFF....WAVE`` (the WAV magic); ``png_txt``: a
  real PNG named ``.txt``; ``utf16_txt`` / ``utf8bom_txt``: text in UTF-16 and in UTF-8,
  each with its byte-order mark.

:func:`write_bomb_png` writes a decompression bomb's header (a PNG claiming 20000x20000
pixels in 74 bytes); :func:`deny_listing` makes folders unreadable the way a chmod 000
does for a non-root user (tests run as root here, and root reads any folder).
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from tests.conftest import fer_image
from tests.voice_fixtures import TONE_HZ, tone

FER_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _jpeg(path: Path, rng: np.random.Generator, label: int = 3) -> Path:
    Image.fromarray(fer_image(label, rng)).save(path, quality=95)
    return path


def _noface_video(path: Path, frames: int = 6) -> Path:
    from emomm.media.video import write_video
    return write_video(path, np.full((frames, 48, 48, 3), 128, np.uint8), fps=10)


def write_corpus(root: Path) -> dict[str, Path]:
    """Every bad case in ``root`` (see the module docstring); returns name -> path."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out: dict[str, Path] = {}
    good = _jpeg(root / "good.jpg", rng)
    out["truncated_jpg"] = root / "truncated.jpg"
    out["truncated_jpg"].write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    good.unlink()
    out["zero_png"] = root / "zero.png"
    out["zero_png"].write_bytes(b"")

    sf.write(root / "tmp.wav", tone(440, 16000, 0.5, rng), 16000)
    out["truncated_wav"] = root / "truncated.wav"
    out["truncated_wav"].write_bytes((root / "tmp.wav").read_bytes()[:30])  # inside the 44-byte header
    (root / "tmp.wav").unlink()
    out["zero_wav"] = root / "zero.wav"
    out["zero_wav"].write_bytes(b"")
    nan = tone(440, 16000, 0.5, rng)
    nan[100:200] = np.nan
    out["nan_wav"] = root / "nan.wav"
    sf.write(out["nan_wav"], nan, 16000, subtype="FLOAT")
    out["silent_wav"] = root / "silent.wav"
    sf.write(out["silent_wav"], np.zeros(16000, np.float32), 16000)

    vid = _noface_video(root / "noface.mp4")
    out["noface_mp4"] = vid
    out["truncated_mp4"] = root / "truncated.mp4"
    out["truncated_mp4"].write_bytes(vid.read_bytes()[:300])
    out["zero_mp4"] = root / "zero.mp4"
    out["zero_mp4"].write_bytes(b"")

    rgba = np.dstack([np.repeat(fer_image(3, rng)[..., None], 3, 2), np.full((48, 48), 255, np.uint8)])
    out["rgba_png"] = root / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(out["rgba_png"])
    out["png16"] = root / "gray16.png"
    Image.fromarray((fer_image(3, rng).astype(np.uint16) * 257)).save(out["png16"])

    _media_cases(root, out, rng)
    out["cp1252_csv"] = root / "cp1252.csv"
    out["cp1252_csv"].write_bytes("text,label\n".encode() + "I\x92m so happy caf\xe9,happy\n".encode("latin-1")
                                  + b"leave me alone,angry\nwhat a day,happy\nstop it,angry\n")
    return out


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 20000, height: int = 20000, header_only: bool = False) -> bytes:
    """A 1-bit grey PNG of ``width`` x ``height`` zeros (a few tens of kB), or only its
    signature and header followed by the start of a garbage IDAT chunk."""
    head = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    if header_only:   # an IDAT that claims 1 MB and holds 100 bytes of garbage
        return head + struct.pack(">I", 1 << 20) + b"IDAT" + bytes(range(100))
    z, row = zlib.compressobj(9), bytes(1 + (width + 7) // 8)   # filter byte + packed bits
    idat = b"".join(z.compress(row * 1000) for _ in range(height // 1000)) + z.compress(row * (height % 1000))
    return head + _png_chunk(b"IDAT", idat + z.flush()) + _png_chunk(b"IEND", b"")


def _media_cases(root: Path, out: dict[str, Path], rng: np.random.Generator) -> None:
    """Bombs, absurd audio and text that looks like media (issue 40's cases)."""
    out["bomb_png"] = root / "bomb.png"
    out["bomb_png"].write_bytes(bomb_png())
    out["bomb_header_png"] = root / "bomb_header.png"
    out["bomb_header_png"].write_bytes(bomb_png(header_only=True))
    out["big_png"] = root / "big.png"
    out["big_png"].write_bytes(bomb_png(10000, 10000))
    out["one_sample_wav"] = root / "one_sample.wav"
    sf.write(out["one_sample_wav"], np.array([0.5], np.float32), 16000)
    out["rate1_wav"] = root / "rate1.wav"
    sf.write(out["rate1_wav"], tone(440, 16000, 0.5, rng), 1)          # the header says 1 Hz
    out["riff_txt"] = root / "riff.txt"
    out["riff_txt"].write_text("RIFF....WAVE what a lovely day, I am so happy")   # sniffs as a WAV
    out["png_txt"] = root / "image.txt"
    Image.fromarray(fer_image(3, rng)).save(out["png_txt"], format="PNG")
    out["utf16_txt"] = root / "utf16.txt"
    out["utf16_txt"].write_bytes("I am so happy, caf\u00e9 na\u00efve".encode("utf-16"))   # with its BOM
    out["utf8bom_txt"] = root / "utf8bom.txt"
    out["utf8bom_txt"].write_bytes("\ufeffI am so happy, caf\u00e9".encode("utf-8"))


@pytest.fixture
def bad_corpus(tmp_path) -> dict[str, Path]:
    return write_corpus(tmp_path / "bad")


def write_bomb_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A PNG whose header claims ``width`` x ``height`` pixels, with a few bytes of data: what a
    decompression bomb looks like to a decoder before it inflates anything."""
    path.write_bytes(bomb_png(width, height, header_only=True))
    return path


def deny_listing(monkeypatch, *folders: Path) -> None:
    """``os.scandir`` / ``os.listdir`` of ``folders`` raise ``PermissionError`` (errno 13,
    naming the folder), as for a non-root user after ``chmod 000``."""
    denied = {os.path.normpath(str(f)) for f in folders}

    def guard(real):
        def call(path=".", *args, **kwargs):
            if os.path.normpath(os.fsdecode(path)) in denied:
                raise PermissionError(13, "Permission denied", os.fsdecode(path))
            return real(path, *args, **kwargs)
        return call

    monkeypatch.setattr(os, "scandir", guard(os.scandir))
    monkeypatch.setattr(os, "listdir", guard(os.listdir))


# -- datasets in their published layouts, with bad files among good ones -------------------
def ravdess_tree(base: Path, actors=range(1, 7), symlinked: bool = True, bad: bool = True) -> Path:
    """``base/ravdess/Actor_NN/03-01-EE-01-01-01-NN.wav`` for 2 emotions per actor.

    With ``symlinked``, every ``Actor_NN`` is a symlink into ``base/store/`` (a dataset on
    another disk) and ``Actor_01`` holds a ``loop`` link back to the root. With ``bad``,
    actor 1 also has a truncated WAV, a 0-byte WAV and a NaN WAV under valid names.
    """
    rng = np.random.default_rng(3)
    root, store = base / "ravdess", base / "store"
    root.mkdir(parents=True)
    for a in actors:
        real = (store if symlinked else root) / f"Actor_{a:02d}"
        real.mkdir(parents=True)
        for emo in (1, 3, 4, 5):
            for rep in (1, 2):
                sf.write(real / f"03-01-{emo:02d}-01-01-{rep:02d}-{a:02d}.wav",
                         tone(TONE_HZ[emo], 16000, 0.4, rng), 16000)
        if symlinked:
            os.symlink(real, root / f"Actor_{a:02d}", target_is_directory=True)
    first = root / f"Actor_{min(actors):02d}"
    if symlinked:
        os.symlink(root, first / "loop", target_is_directory=True)  # a loop: must not hang
    if bad:
        a = min(actors)
        (first / f"03-01-02-01-01-01-{a:02d}.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVE")
        (first / f"03-01-02-01-01-02-{a:02d}.wav").write_bytes(b"")
        nan = tone(300, 16000, 0.4, rng)
        nan[10:20] = np.nan
        sf.write(first / f"03-01-02-02-01-01-{a:02d}.wav", nan, 16000, subtype="FLOAT")
    return root


def fer_tree(base: Path, per_class: int = 3, bad: bool = True) -> Path:
    """``base/fer/{train,val}/<class>/*.jpg``; with ``bad``, train/happy also holds a
    truncated JPEG, a 0-byte PNG, a decompression bomb's header (skipped, counted), an RGBA
    PNG and a 16-bit PNG (read)."""
    rng = np.random.default_rng(4)
    root = base / "fer"
    for split in ("train", "val"):
        for lab, name in enumerate(FER_CLASSES):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(per_class):
                _jpeg(d / f"{i}.jpg", rng, lab)
    if bad:
        c = write_corpus(base / "fer_bad")
        d = root / "train" / "happy"
        for key in ("truncated_jpg", "zero_png", "rgba_png", "png16"):
            os.replace(c[key], d / c[key].name)
        write_bomb_png(d / "bomb.png")
    return root


MELD_HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
MELD_EMOTIONS = ["neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust"]


def meld_tree(base: Path, clips: bool = True) -> Path:
    """Official MELD CSVs (train + dev) with one row whose emotion is unknown (``bored``)
    and, with ``clips``, ``train_splits/diaD_uttU.mp4`` clips for all rows but one (the CSV
    names a clip that is missing) and one clip that is truncated."""
    root = base / "meld"
    root.mkdir(parents=True)
    for split, n_dlg in (("train", 4), ("dev", 2)):
        lines, sr = [MELD_HEADER], 1
        for d in range(n_dlg):
            for u in range(7):
                emo = MELD_EMOTIONS[u]
                lines.append(f'{sr},"I feel {emo} today, number {d}",Ross,{emo},neutral,{d},{u},1,1,'
                             f'"00:00:01,000","00:00:02,000"\n')
                sr += 1
        if split == "train":
            lines.append(f'{sr},"so dull",Joey,bored,neutral,0,9,1,1,"00:00:01,000","00:00:02,000"\n')
        (root / f"{split}_sent_emo.csv").write_text("".join(lines))
    if clips:
        d = root / "train_splits"
        d.mkdir()
        src = _noface_video(d / "dia0_utt0.mp4")
        for dlg in range(4):
            for u in range(7):
                if (dlg, u) in ((0, 0), (3, 6)):
                    continue  # dia3_utt6 is named by the CSV but missing
                (d / f"dia{dlg}_utt{u}.mp4").write_bytes(src.read_bytes())
        (d / "dia1_utt1.mp4").write_bytes(src.read_bytes()[:200])
    return root
