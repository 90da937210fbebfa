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

:func:`write_media_corpus` adds the cases of issue 40 (and a few more) beside those, and good
controls: decompression bombs (:func:`bomb_png`, whole or its header alone), a 1-sample WAV, a
WAV claiming 1 Hz, text files in UTF-16 / UTF-8 with BOM / cp1252, text whose first bytes are
another format's magic, an empty and a huge text. :func:`checkpoint_corpus` derives hostile
and damaged checkpoints from a good one (gadget ``_target_``s that would write into a canary
folder, missing / partial ``hyper_parameters``, empty, truncated, pickled code, a JPEG named
``.ckpt``, NaN weights). :func:`fer_variant`, :func:`ravdess_tree` (``unreadable=``) and
:func:`meld_csv_variant` make the broken datasets; :func:`truncate_file` the faults.
"""
from __future__ import annotations

import os
import struct
import wave
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


def write_bomb_png(path: Path, width: int = 20000, height: int = 20000, header_only: bool = True) -> Path:
    """:func:`bomb_png` into ``path``: by default a PNG whose header claims ``width`` x
    ``height`` pixels with a few bytes of data, what a decompression bomb looks like to a
    decoder before it inflates anything; ``header_only=False``: the whole valid image."""
    path.write_bytes(bomb_png(width, height, header_only=header_only))
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
def ravdess_tree(base: Path, actors=range(1, 7), symlinked: bool = True, bad: bool = True,
                 emotions=(1, 3, 4, 5), unreadable: int | None = None) -> Path:
    """``base/ravdess/Actor_NN/03-01-EE-01-01-RR-NN.wav`` for ``emotions``, 2 takes each.

    With ``symlinked``, every ``Actor_NN`` is a symlink into ``base/store/`` (a dataset on
    another disk) and ``Actor_01`` holds a ``loop`` link back to the root. With ``bad``,
    actor 1 also has a truncated WAV, a 0-byte WAV and a NaN WAV under valid names. With
    ``unreadable=N``, ``Actor_NN`` loses every permission (mode 000: a user other than root
    cannot list it; root reads through it, so run the reader as another user to see it).
    """
    rng = np.random.default_rng(3)
    root, store = base / "ravdess", base / "store"
    root.mkdir(parents=True)
    for a in actors:
        real = (store if symlinked else root) / f"Actor_{a:02d}"
        real.mkdir(parents=True)
        for emo in emotions:
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
    if unreadable is not None:
        os.chmod((store if symlinked else root) / f"Actor_{unreadable:02d}", 0)
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


# -- the rest of issue 40's corpus: bombs, odd audio, text encodings, checkpoints ------------
GOOD_SENTENCE = "I\u2019m so happy to see you at the caf\u00e9 today"


def pcm16_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """``samples`` (float in [-1, 1]) as a 16-bit mono WAV whose header says ``rate`` Hz
    (any rate, 1 Hz included: the ``wave`` module writes what it is given)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def speechlike(seconds: float = 2.0, sr: int = 16000) -> np.ndarray:
    """float32 ``[T]``: a voiced-speech-like signal (140 Hz pulse train with harmonics under a
    4 Hz syllable envelope), what a voice activity detector should call speech."""
    t = np.arange(int(seconds * sr)) / sr
    sig = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12))
    return (sig * 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) * 0.2).astype(np.float32)


def face_video(path: Path, frames: int = 10, fps: float = 5.0) -> Path:
    """A valid video of a synthetic face (one MTCNN finds) on its own background."""
    from emomm.media.video import write_video
    from tests.serve_helpers import face_frame
    return write_video(path, np.stack([face_frame(160, 120, i % 7) for i in range(frames)]), fps=fps)


def write_media_corpus(root: Path, huge_text_mb: float = 2.0) -> dict[str, Path]:
    """:func:`write_corpus`'s cases plus these (name -> path), each in ``root``:

    * good controls: ``good_jpg`` (a synthetic face, 160x120), ``good_wav`` (2 s speech-like),
      ``good_mp4`` (2 s of the face), ``good_txt`` (:data:`GOOD_SENTENCE`, UTF-8);
    * ``bomb_png`` (20000x20000 pixels, ~50 KB) and ``bomb_header_png`` (its header alone);
    * ``one_sample_wav`` (one sample at 16 kHz), ``one_hz_wav`` (16 samples, header says 1 Hz);
    * ``utf16_txt`` / ``utf8_bom_txt`` / ``cp1252_txt``: :data:`GOOD_SENTENCE` in those encodings;
    * ``bm_txt`` / ``id3_txt`` / ``gif_txt``: plain English whose first bytes are a BMP's,
      an MP3's, a GIF's magic;
    * ``empty_txt`` (0 bytes), ``blank_txt`` (whitespace), ``huge_txt`` (``huge_text_mb`` MB);
    * ``jpg_named_wav``: the good face JPEG named ``.wav`` (read by its content).
    """
    from tests.serve_helpers import face_frame
    out = write_corpus(root)
    out["good_jpg"] = root / "good.jpg"
    Image.fromarray(face_frame(160, 120)).save(out["good_jpg"], quality=95)
    out["good_wav"] = root / "good.wav"
    sf.write(out["good_wav"], speechlike(2.0), 16000)
    out["good_mp4"] = face_video(root / "good.mp4")
    out["bomb_png"] = write_bomb_png(root / "bomb.png", header_only=False)
    out["bomb_header_png"] = write_bomb_png(root / "bomb_header.png")
    out["one_sample_wav"] = pcm16_wav(root / "one_sample.wav", np.array([0.5]), 16000)
    out["one_hz_wav"] = pcm16_wav(root / "one_hz.wav", 0.5 * np.sin(np.arange(16)), 1)
    texts = {"good_txt": ("good.txt", GOOD_SENTENCE.encode("utf-8")),
             "utf16_txt": ("utf16.txt", GOOD_SENTENCE.encode("utf-16")),          # with its BOM
             "utf8_bom_txt": ("utf8_bom.txt", GOOD_SENTENCE.encode("utf-8-sig")),
             "cp1252_txt": ("cp1252.txt", GOOD_SENTENCE.encode("cp1252")),
             "bm_txt": ("bmw.txt", b"BMW drivers make me so angry every single morning"),
             "id3_txt": ("id3.txt", b"ID3 tags on my songs are wrong and it makes me sad"),
             "gif_txt": ("gif.txt", b"GIF89a was the best format ever, I am so happy about it"),
             "empty_txt": ("empty.txt", b""),
             "blank_txt": ("blank.txt", b"   \n\t\n  ")}
    for key, (name, data) in texts.items():
        out[key] = root / name
        out[key].write_bytes(data)
    line = (GOOD_SENTENCE + ". ").encode()
    out["huge_txt"] = root / "huge.txt"
    out["huge_txt"].write_bytes(line * int(huge_text_mb * 1e6 / len(line)))
    out["jpg_named_wav"] = root / "photo_named.wav"
    out["jpg_named_wav"].write_bytes(out["good_jpg"].read_bytes())
    return out


class CodePayload:
    """Unpickling this runs ``open(marker, "w")`` (a file appears where nothing should)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def gadget_configs(canary: Path, secret: Path) -> dict[str, tuple[str, dict]]:
    """Plain-dict configs that would act on the file system when Hydra instantiates them:
    name -> (which ``hyper_parameters`` entry they replace, the config). Every target is
    under ``canary``; ``secret`` is a file the copy gadget reads."""
    return {
        "gadget_open": ("encoder", {"_target_": "builtins.open", "file": str(canary / "opened.txt"), "mode": "w"}),
        "gadget_write_text": ("encoder", {"_target_": "pathlib.Path.write_text", "_args_": [
            {"_target_": "pathlib.Path", "_args_": [str(canary / "written.txt")]}, "pwned"]}),
        "gadget_copyfile": ("encoder", {"_target_": "shutil.copyfile", "src": str(secret),
                                        "dst": str(canary / "copied.txt")}),
        "gadget_makedirs": ("encoder", {"_target_": "os.makedirs", "name": str(canary / "made" / "deep")}),
        "gadget_data": ("data", {"_target_": "os.makedirs", "name": str(canary / "data_made")}),
    }


def checkpoint_corpus(good: Path, root: Path, canary: Path, secret: Path,
                      only: set[str] | None = None) -> dict[str, Path]:
    """Bad checkpoints derived from the good checkpoint ``good`` (name -> path in ``root``):

    * :func:`gadget_configs`: the first encoder's (or the data's) config replaced by a gadget
      aimed into ``canary``; the weights are intact;
    * ``ckpt_no_hparams`` (no ``hyper_parameters``), ``ckpt_partial_hparams`` (only the
      labels), ``ckpt_empty`` (0 bytes), ``ckpt_truncated`` (the first half of ``good``),
      ``ckpt_pickled_code`` (:class:`CodePayload` in the hyper-parameters: a marker file in
      ``canary`` if it is ever unpickled), ``ckpt_jpeg`` (a JPEG named ``.ckpt``),
      ``ckpt_nan_weights`` (every floating weight NaN), ``ckpt_bad_shapes`` (a weight of the
      wrong shape).
    ``only`` limits which are written.
    """
    import torch
    root.mkdir(parents=True, exist_ok=True)
    want = (lambda name: only is None or name in only)
    base = torch.load(good, map_location="cpu", weights_only=True)
    base = {k: v for k, v in base.items() if k not in ("optimizer_states", "lr_schedulers")}
    out: dict[str, Path] = {}

    def save(name: str, obj) -> None:
        out[name] = root / f"{name}.ckpt"
        torch.save(obj, out[name])

    for name, (where, cfg) in gadget_configs(canary, secret).items():
        if want(name):
            hp = dict(base["hyper_parameters"])
            if where == "data":
                hp["data"] = cfg
            else:
                first = next(iter(hp["encoders"]))
                hp["encoders"] = {**hp["encoders"], first: cfg}
            save(name, {**base, "hyper_parameters": hp})
    if want("ckpt_no_hparams"):
        save("ckpt_no_hparams", {k: v for k, v in base.items() if k != "hyper_parameters"})
    if want("ckpt_partial_hparams"):
        labels = base["hyper_parameters"]["label_names"]
        save("ckpt_partial_hparams", {**base, "hyper_parameters": {"label_names": labels}})
    if want("ckpt_empty"):
        out["ckpt_empty"] = root / "ckpt_empty.ckpt"
        out["ckpt_empty"].write_bytes(b"")
    if want("ckpt_truncated"):
        data = good.read_bytes()
        out["ckpt_truncated"] = root / "ckpt_truncated.ckpt"
        out["ckpt_truncated"].write_bytes(data[: len(data) // 2])
    if want("ckpt_pickled_code"):
        save("ckpt_pickled_code", {**base, "hyper_parameters": {**base["hyper_parameters"],
                                                                "note": CodePayload(canary / "unpickled.txt")}})
    if want("ckpt_jpeg"):
        out["ckpt_jpeg"] = root / "ckpt_jpeg.ckpt"
        Image.fromarray(fer_image(3, np.random.default_rng(5))).save(out["ckpt_jpeg"], format="JPEG")
    if want("ckpt_nan_weights"):
        sd = {k: (torch.full_like(v, float("nan")) if v.is_floating_point() else v)
              for k, v in base["state_dict"].items()}
        save("ckpt_nan_weights", {**base, "state_dict": sd})
    if want("ckpt_bad_shapes"):
        sd = dict(base["state_dict"])
        key = next(k for k, v in sd.items() if v.is_floating_point() and v.dim() >= 2)
        sd[key] = torch.zeros(*(s + 1 for s in sd[key].shape))
        save("ckpt_bad_shapes", {**base, "state_dict": sd})
    return out


def truncate_file(path: Path, fraction: float = 0.77) -> Path:
    """Cut ``path`` to ``fraction`` of its size in place (a write interrupted by a full disk)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


# -- broken copies of the datasets ----------------------------------------------------------
FER_VARIANTS = ("good", "bad_files", "bomb", "missing_class", "val_unreadable")


def fer_variant(base: Path, kind: str, per_class: int = 3) -> Path:
    """A :func:`fer_tree` (``base/fer``) broken one way (:data:`FER_VARIANTS`):

    * ``good``: no bad file at all;
    * ``bad_files``: :func:`fer_tree`'s bad files (a truncated JPEG and a 0-byte PNG, plus an
      RGBA and a 16-bit PNG that read) in ``train/happy``;
    * ``bomb``: those plus a whole :func:`bomb_png` in ``train/happy`` and
      only its header in ``val/sad`` (skip and count, naming them);
    * ``missing_class``: ``train/disgust`` empty (no training sample of a class);
    * ``val_unreadable``: every validation image truncated (an unusable validation split).
    """
    if kind not in FER_VARIANTS:
        raise ValueError(f"kind={kind!r}: one of {FER_VARIANTS}")
    root = fer_tree(base, per_class=per_class, bad=kind in ("bad_files", "bomb"))
    if kind == "bomb":
        write_bomb_png(root / "train" / "happy" / "bomb.png", header_only=False)
        write_bomb_png(root / "val" / "sad" / "bomb_header.png")
    elif kind == "missing_class":
        for f in (root / "train" / "disgust").iterdir():
            f.unlink()
    elif kind == "val_unreadable":
        for f in (root / "val").rglob("*.jpg"):
            f.write_bytes(f.read_bytes()[:100])
    return root


MELD_CSV_VARIANTS = ("broken", "empty", "cp1252")


def meld_csv_variant(base: Path, kind: str) -> Path:
    """A text-only :func:`meld_tree` whose ``train_sent_emo.csv`` is broken one way:
    ``broken`` (an unterminated quote and a row of the wrong width), ``empty`` (0 bytes) or
    ``cp1252`` (Windows-1252 bytes in the utterances: not UTF-8)."""
    if kind not in MELD_CSV_VARIANTS:
        raise ValueError(f"kind={kind!r}: one of {MELD_CSV_VARIANTS}")
    root = meld_tree(base, clips=False)
    csv = root / "train_sent_emo.csv"
    if kind == "broken":
        lines = csv.read_text().splitlines(keepends=True)
        lines[3] = '3,"this quote never ends,Ross,joy,positive,0,2,1,1\n'
        lines.insert(5, "1,2,3\n")
        csv.write_text("".join(lines))
    elif kind == "empty":
        csv.write_bytes(b"")
    else:
        csv.write_bytes(csv.read_text().replace("I feel", "I\u2019m caf\u00e9 and feel").encode("cp1252"))
    return root
