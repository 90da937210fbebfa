"""Property-based tests (hypothesis): file-name parsers, CSV readers and audio decoding hold
for generated inputs, and malformed inputs are a ValueError naming the input, never another
exception. Each property compares against an independent expectation, so a parser that drops
a field or a decoder that rescales would fail. The whole file runs in well under 20 s."""
from __future__ import annotations

import csv
import io
import re
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from emomm.data.datasets.fer2013 import read_fer_csv
from emomm.data.datasets.meld import clip_name, parse_clip_name
from emomm.data.core.speakers import parse_cremad_name, parse_ravdess_name
from emomm.data.pipelines.text_data import decode_bytes, read_table
from emomm.labels import CREMAD_CODES, RAVDESS
from emomm.media.audio import load_audio

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- file-name parsers ---------------------------------------------------------------------
@FAST
@given(mo=st.integers(1, 3), ch=st.integers(1, 2), em=st.integers(1, 8), it=st.integers(1, 2),
       stt=st.integers(1, 2), rp=st.integers(1, 2), ac=st.integers(1, 99),
       ext=st.sampled_from([".wav", ".flac", ".mp4", ".WAV"]))
def test_ravdess_names_round_trip(mo, ch, em, it, stt, rp, ac, ext):
    name = parse_ravdess_name(f"Actor_{ac:02d}/{mo:02d}-{ch:02d}-{em:02d}-{it:02d}-{stt:02d}-{rp:02d}-{ac:02d}{ext}")
    assert name.modality == {1: "audio-video", 2: "video-only", 3: "audio-only"}[mo]
    assert name.channel == ("speech" if ch == 1 else "song") and name.emotion == RAVDESS[em - 1]
    assert (name.intensity, name.statement, name.repetition, name.actor) == (it, stt, rp, ac)
    assert name.sex == ("male" if ac % 2 else "female")


@FAST
@given(st.text(alphabet="0123456789-_abAB", max_size=24))
def test_ravdess_rejects_other_names_with_a_clear_error(stem):
    fields = stem.split("-")
    valid = (re.fullmatch(r"\d\d(-\d\d){6}", stem) is not None
             and 1 <= int(fields[0]) <= 3 and 1 <= int(fields[1]) <= 2 and 1 <= int(fields[2]) <= 8
             and all(1 <= int(f) <= 2 for f in fields[3:6]) and 1 <= int(fields[6]) <= 99)
    if valid:
        assert parse_ravdess_name(stem + ".wav").actor == int(fields[6])
    else:
        with pytest.raises(ValueError, match=re.escape(stem + ".wav")):
            parse_ravdess_name(stem + ".wav")


LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified", "X": "unspecified"}


@FAST
@given(actor=st.integers(1000, 9999), sentence=st.text(string.ascii_uppercase, min_size=3, max_size=3),
       emo=st.sampled_from(sorted(CREMAD_CODES)), level=st.sampled_from(sorted(LEVELS)),
       ext=st.sampled_from([".wav", ".mp3", ".flv"]))
def test_cremad_names_round_trip(actor, sentence, emo, level, ext):
    name = parse_cremad_name(f"AudioWAV/{actor}_{sentence}_{emo}_{level}{ext}")
    assert (name.actor, name.sentence, name.emotion, name.level) == (actor, sentence, CREMAD_CODES[emo], LEVELS[level])


@FAST
@given(st.text(alphabet=string.ascii_uppercase + string.digits + "_x", max_size=20))
def test_cremad_rejects_other_names_with_a_clear_error(stem):
    m = re.fullmatch(r"(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})", stem)
    if m and m.group(3) in CREMAD_CODES and m.group(4) in LEVELS:
        assert parse_cremad_name(stem + ".wav").actor == int(m.group(1))
    else:
        with pytest.raises(ValueError, match=re.escape(stem + ".wav")):
            parse_cremad_name(stem + ".wav")


@FAST
@given(d=st.integers(0, 10**6), u=st.integers(0, 10**4))
def test_meld_clip_names_round_trip(d, u):
    assert parse_clip_name(Path("train_splits") / clip_name(d, u)) == (d, u)


@FAST
@given(st.text(alphabet="diaut_0123456789.mpx4", max_size=20))
def test_meld_rejects_other_clip_names(name):
    m = re.fullmatch(r"dia(\d+)_utt(\d+)\.mp4", name)
    if m:
        assert parse_clip_name(name) == (int(m.group(1)), int(m.group(2)))
    else:
        with pytest.raises(ValueError, match="not a MELD clip name"):
            parse_clip_name(name)


# -- CSV readers ----------------------------------------------------------------------------
# Printable text with the characters that break naive CSV handling: commas, quotes, semicolons.
CELL = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, blacklist_categories=("Cs", "Cc")),
               min_size=1, max_size=30).filter(lambda s: s.strip() == s and s != "")


@FAST
@given(rows=st.lists(st.tuples(CELL, st.sampled_from(["happy", "sad", "angry"])), min_size=1, max_size=8),
       sep=st.sampled_from([",", "\t", ";"]))
def test_read_table_round_trips_quoted_cells(rows, sep):
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator="\n")
    w.writerow(["text", "label"])
    w.writerows(rows)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("t.tsv" if sep == "\t" else "t.csv")
        path.write_text(buf.getvalue(), encoding="utf-8")
        df, n_cp1252 = read_table(path, sep=sep)
    assert n_cp1252 == 0
    assert list(zip(df["text"], df["label"])) == rows


#: a byte pair (or longer run) that is also a valid UTF-8 multi-byte character
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


@FAST
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
@example(text="\xa0\xc2\xa0")  # found by hypothesis: cp1252 bytes a0 c2 a0, whose c2 a0 is UTF-8
def test_decode_bytes_reads_utf8_exactly_and_cp1252_when_not_utf8(text):
    assert decode_bytes(text.encode("utf-8")) == (text, 0)
    try:
        raw = text.encode("cp1252")
    except UnicodeEncodeError:
        return
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return  # "ÿþ" / "þÿ" in cp1252 are the UTF-16 byte-order marks: read as UTF-16 (see test_text)
    decoded, n = decode_bytes(raw)
    try:
        raw.decode("utf-8")
        is_utf8 = True
    except UnicodeDecodeError:
        is_utf8 = False
    assert (n > 0) == (not is_utf8)
    if is_utf8:
        assert decoded == raw.decode("utf-8")
    elif _UTF8_MULTIBYTE.search(raw) is None:
        assert decoded == text  # every non-ASCII byte is a lone cp1252 byte
    else:
        # Mixed files are decoded run by run: a cp1252 pair such as "\xc2\xa0" (read "Â" + NBSP)
        # is also valid UTF-8 (one NBSP) and is read as UTF-8, so only the lone bytes are cp1252.
        assert decoded == _mixed_reference(raw) and len(decoded) < len(text)


def _mixed_reference(raw: bytes) -> str:
    """Token by token: a valid UTF-8 multi-byte character as UTF-8, any other byte as cp1252."""
    out = []
    for tok in re.findall(_UTF8_MULTIBYTE.pattern + rb"|[\x00-\xff]", raw, flags=re.DOTALL):
        try:
            out.append(tok.decode("utf-8") if len(tok) > 1 else tok.decode("cp1252"))
        except UnicodeDecodeError:
            out.append(tok.decode("cp1252"))
    return "".join(out)


@SLOW
@given(good=st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["Training", "PublicTest", "PrivateTest"])),
                     min_size=1, max_size=5),
       bad=st.lists(st.sampled_from(["short", "range", "label", "usage", "text"]), max_size=4),
       seed=st.integers(0, 2**16))
def test_fer_csv_rows_round_trip_and_bad_rows_are_counted(good, bad, seed):
    rng = np.random.default_rng(seed)
    imgs = [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in good]
    lines = ["emotion,pixels,Usage"] + [f"{y},{' '.join(map(str, im.ravel()))},{u}" for (y, u), im in zip(good, imgs)]
    full = " ".join(["7"] * 2304)
    lines += [{"short": "1,1 2 3,Training", "range": "1," + " ".join(["256"] * 2304) + ",Training",
               "label": f"7,{full},Training", "usage": f"1,{full},Elsewhere",
               "text": "1," + "a " * 2304 + ",Training"}[b] for b in bad]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fer2013.csv"
        path.write_text("\n".join(lines) + "\n")
        images, labels, n_bad = read_fer_csv(path)
    assert n_bad == len(bad)
    for split, usage in (("train", "Training"), ("val", "PublicTest"), ("test", "PrivateTest")):
        want = [(y, im) for (y, u), im in zip(good, imgs) if u == usage]
        assert labels[split].tolist() == [y for y, _ in want]
        assert all(np.array_equal(a, im) for a, (_, im) in zip(images[split], want))


# -- audio decoding -------------------------------------------------------------------------
@SLOW
@given(sr=st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]), n=st.integers(1, 4000),
       channels=st.integers(1, 3), subtype=st.sampled_from(["FLOAT", "PCM_16", "PCM_24"]),
       fmt=st.sampled_from(["WAV", "FLAC"]), seed=st.integers(0, 2**16))
def test_audio_round_trips_within_quantisation(sr, n, channels, subtype, fmt, seed):
    assume(not (fmt == "FLAC" and subtype == "FLOAT"))  # FLAC has no float samples
    wave = np.random.default_rng(seed).uniform(-0.99, 0.99, (n, channels)).astype(np.float32)
    tol = {"FLOAT": 1e-7, "PCM_16": 1.0 / 2**15, "PCM_24": 1.0 / 2**23}[subtype] * 1.01
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"x.{fmt.lower()}"
        sf.write(path, wave, sr, subtype=subtype, format=fmt)
        multi, rate = load_audio(path, mono=False)
        mono, _ = load_audio(path)
        resampled, rate16 = load_audio(path, sample_rate=16000)
    assert rate == sr and multi.shape == (channels, n) and multi.dtype == np.float32
    assert np.abs(multi - wave.T).max() <= tol
    assert mono.shape == (n,) and np.abs(mono - wave.mean(axis=1)).max() <= tol
    assert rate16 == 16000 and np.isfinite(resampled).all()
    assert abs(len(resampled) - n * 16000 / sr) <= 1
