"""Bad inputs through every entry point (issue 40's "Done means"): totals of what happened.

    python -m benchmarks.bad_inputs [--quick] [--name bad_inputs] [--overwrite] [--exec] [--suites ...]

A corpus of bad inputs of our own (:mod:`tests.bad_inputs` writes them: media, text, hostile
and damaged checkpoints, broken datasets; this script adds HTTP requests, WebSocket messages
and a fault) runs through ``python -m emomm.predict``, ``validate``, ``train`` (a few steps),
``eval``, ``export``, ``serve`` and ``live``. Two tiny models are trained first (a face +
voice + text model on the synthetic data, a face model on a FER folder); the second run is
itself the ``train`` control. Writes ``benchmarks/results/<name>.json``.

How each (case, entry point) runs:

* CLIs run as child processes (``python -m emomm.<entry> ...``) with a timeout, ``HOME``,
  ``TMPDIR`` and the working directory set to fresh empty folders, every output sent to a
  declared folder (``hydra.run.dir``, ``out=``, ``out_dir=``, ``jsonl=``). By default a child
  is forked from this process after the heavy libraries are imported (a ~7 s import saved per
  run, ~180 runs); ``--exec`` starts a fresh interpreter instead. Readers of the unreadable-
  folder case drop root's power to read through file modes (root reads a mode-000 folder).
* The server's checkpoint cases start ``python -m emomm.serve`` on a free loopback port: a
  checkpoint that loads is "served" (a result), asked ``GET /api/model`` and stopped.
* HTTP requests and WebSocket messages go straight to the app built by
  ``emomm.serve.app.create_app`` (one child process), through a small ASGI driver that feeds
  the body in 256 KB chunks and counts how much the app read before it answered.

Classification (:func:`classify`; the expectations are the :data:`CASES` table). Each run is
first reduced to an :class:`Observation`: a **result** (exit 0, a prediction line without
``error``, a 2xx answer, a WebSocket reply that is not an error), a **refusal** (non-zero exit
without an uncaught exception, a prediction line with ``error``, a 4xx JSON answer, a
WebSocket error message after which the session still answers) or a **crash** (a timeout, a
signal, a 5xx, an exception out of the app, a dropped WebSocket session, no answer at all, or
a Python traceback whose final exception is a programming error - ``TypeError``,
``KeyError``, ``EOFError``... - or whose message does not name the input). A traceback whose
final message names the input (a deliberate error that Hydra prints with its stack) is a
refusal with the message problem ``traceback shown``; the strictest reading, every traceback
a crash, is ``crash`` + ``clear_errors_with_traceback`` in the totals. "Names the input": the
message holds the file's path or name, or for a case with ``names`` (datasets) one of those
regexes (the bad file or folder, not the dataset root every report prints); the answer to a
request is about that request. Then, with the case's expectation:

====================  ==========================  ===============  =========
expectation           result                      refusal          crash
====================  ==========================  ===============  =========
``ok``                ok (``silent_wrong`` when   ``clear_error``  ``crash``
                      its ``check`` regex fails)  (a good input
                                                  refused: noted)
``refuse``            ``silent_wrong``            ``clear_error``  ``crash``
``flag``              ok when its ``flag`` regex  ``clear_error``  ``crash``
                      matches, else silent_wrong
====================  ==========================  ===============  =========

``silent_wrong`` also covers a refusal that came only after the app read far more of a request
body than its cap (``max_read``): the cap was not enforced while reading.

Independent of the category:

* ``wrote`` - files or folders created, changed or removed where nothing should be: the run's
  ``HOME``, ``TMPDIR`` (left behind at exit), working directory and canary folder (the
  gadgets' targets), the inputs it read, and in fork mode this process's own ``HOME``.
  Library caches under ``HOME`` listed in :data:`HOME_CACHES` are allowed.
* message problems of refusals - ``does not name the input``, ``traceback shown``, and
  :data:`FORBIDDEN` phrases (a temporary path in the server's answers, torch's advice to load
  the file anyway with ``weights_only=False``), ``HTTP 403 instead of close code 4401``.

Totals: runs (= inputs tried through an entry point), distinct cases (``inputs``), and per
category; ``wrote_files_where_nothing_should``; ``unclear_messages`` (refusals with a message
problem); ``clear_errors_with_traceback``; ``refused_good_inputs``; by entry point and by class;
``failures`` lists every run that is not ok / clear_error or wrote files, with its one-line
reason; ``runs`` every run.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported (by benchmarks.common)

from benchmarks.common import ROOT, refuse_to_overwrite, write_result  # noqa: E402

ENTRY_POINTS = ("predict", "validate", "train", "eval", "export", "serve", "live")
CATEGORIES = ("ok", "clear_error", "crash", "silent_wrong")

# -- expectations ---------------------------------------------------------------------------
NO_SPEECH = r"(?i)no speech|not speech|no voice|\"speech\": false|silence"
NO_SPEECH_LIVE = r"voiced frames: 0 of [1-9]"
TRUNCATED_TEXT = r"(?i)truncat|too long|too large|characters"


@dataclass(frozen=True)
class Expect:
    """What one entry point should do with one case: ``want`` ok | refuse | flag; ``flag``:
    the regex a result must match (want=flag); ``check``: the regex a result must match to be
    right (want=ok); ``names``: regexes that name the input (instead of its path and file
    name: for a dataset, the bad file or folder rather than the dataset's root, which every
    report prints); ``max_read``: bytes of a request body the app may read before answering."""
    want: str
    flag: str | None = None
    check: str | None = None
    names: tuple[str, ...] = ()
    max_read: int | None = None

    def __post_init__(self):
        if self.want not in ("ok", "refuse", "flag"):
            raise ValueError(f"want={self.want!r}")
        if self.want == "flag" and not self.flag:
            raise ValueError("want=flag needs a flag regex")


OK, REFUSE = Expect("ok"), Expect("refuse")


def flag(regex: str, names: tuple[str, ...] = ()) -> Expect:
    return Expect("flag", flag=regex, names=names)


@dataclass(frozen=True)
class Case:
    cls: str                       # media | text | checkpoint | dataset | http | websocket | fault
    what: str
    expect: dict[str, Expect]      # entry point -> expectation
    quick: bool = False            # part of --quick


def _sentence_check() -> str:
    from tests.bad_inputs import GOOD_SENTENCE
    return re.escape('"text": ' + json.dumps(GOOD_SENTENCE, ensure_ascii=False))


SENTENCE = _sentence_check()
AS_TEXT = Expect("ok", check=r'"kind": "text"')
NO_SPEECH_ALL = {"predict": flag(NO_SPEECH), "serve": flag(NO_SPEECH), "live": flag(NO_SPEECH_LIVE)}
CKPT_ALL = ("predict", "eval", "export", "serve", "live")
KB, MB = 1024, 1024 * 1024
BOMBS, TRAIN_CSV = r"bomb(_header)?\.png", r"train_sent_emo\.csv"
# What a capped server may read before its 413: the cap plus the body chunk that crossed it
# (bodies arrive in chunks of up to 64 KB here; the cap can only act on a whole chunk).
CHUNK = 64 * KB
TEXT_READ = 1 * MB + CHUNK    # limits.max_body_mb=1: the text endpoint's JSON or form
UPLOAD_READ = 10 * MB + 2 * CHUNK   # limits.max_image_mb=10, plus the multipart envelope and a chunk

CASES: dict[str, Case] = {
    # media: predict (one file), the server's upload endpoint, live's file camera/microphone
    "good_jpg": Case("media", "a synthetic face, 160x120 JPEG (control)", {"predict": OK, "serve": OK}, quick=True),
    "good_wav": Case("media", "2 s of speech-like audio (control)", {"predict": OK, "serve": OK, "live": OK}),
    "good_mp4": Case("media", "2 s video of the face (control)", {"predict": OK, "serve": OK, "live": OK}, quick=True),
    "truncated_jpg": Case("media", "half a JPEG", {"predict": REFUSE, "serve": REFUSE}),
    "zero_png": Case("media", "a 0-byte PNG", {"predict": REFUSE, "serve": REFUSE}),
    "rgba_png": Case("media", "an RGBA face", {"predict": OK, "serve": OK}),
    "png16": Case("media", "a 16-bit grey face", {"predict": OK, "serve": OK}),
    "bomb_png": Case("media", "a 20000x20000 PNG (decompression bomb, 50 KB)",
                     {"predict": REFUSE, "serve": REFUSE}, quick=True),
    "bomb_header_png": Case("media", "a PNG header claiming 20000x20000, no pixels",
                            {"predict": REFUSE, "serve": REFUSE}),
    "truncated_wav": Case("media", "a WAV cut inside its header", {"predict": REFUSE, "serve": REFUSE, "live": REFUSE}),
    "zero_wav": Case("media", "a 0-byte WAV", {"predict": REFUSE, "serve": REFUSE, "live": REFUSE}),
    "nan_wav": Case("media", "a float WAV holding NaNs", {"predict": REFUSE, "serve": REFUSE, "live": REFUSE}),
    "silent_wav": Case("media", "1 s of digital silence: no speech",
                       NO_SPEECH_ALL, quick=True),
    "one_sample_wav": Case("media", "a WAV of one sample",
                           NO_SPEECH_ALL),
    "one_hz_wav": Case("media", "a WAV whose header claims 1 Hz (16 samples)",
                       NO_SPEECH_ALL),
    "truncated_mp4": Case("media", "the first 300 bytes of an MP4",
                          {"predict": REFUSE, "serve": REFUSE, "live": REFUSE}),
    "zero_mp4": Case("media", "a 0-byte MP4", {"predict": REFUSE, "serve": REFUSE, "live": REFUSE}),
    "noface_mp4": Case("media", "a valid video of flat grey frames: no face",
                       {"serve": flag(r"(?i)no face")}),
    "cp1252_csv": Case("media", "a CSV (not a media file) given as an input / an image upload",
                       {"predict": REFUSE, "serve": REFUSE}),
    "jpg_named_wav": Case("media", "the good JPEG named .wav (read by its content)", {"predict": OK}),
    # text files (predict reads .txt) and text requests
    "good_txt": Case("text", "the sentence in UTF-8 (control)", {"predict": Expect("ok", check=SENTENCE), "serve": OK}),
    "utf16_txt": Case("text", "the sentence in UTF-16 with its BOM", {"predict": Expect("ok", check=SENTENCE)},
                      quick=True),
    "utf8_bom_txt": Case("text", "the sentence in UTF-8 with a BOM", {"predict": Expect("ok", check=SENTENCE)}),
    "cp1252_txt": Case("text", "the sentence in Windows-1252 (not UTF-8)", {"predict": Expect("ok", check=SENTENCE)}),
    "bm_txt": Case("text", "English text starting with a BMP's magic (BM)", {"predict": AS_TEXT}),
    "id3_txt": Case("text", "English text starting with an MP3's magic (ID3)", {"predict": AS_TEXT}),
    "gif_txt": Case("text", "English text starting with a GIF's magic (GIF89a)", {"predict": AS_TEXT}),
    "empty_txt": Case("text", "a 0-byte .txt", {"predict": REFUSE, "serve": REFUSE}),
    "blank_txt": Case("text", "a .txt of whitespace", {"predict": REFUSE, "serve": REFUSE}),
    "huge_txt": Case("text", "a 2 MB .txt (the server's cap is 5000 characters)",
                     {"predict": flag(TRUNCATED_TEXT), "serve": REFUSE}),
    # checkpoints, each through every loader
    "ckpt_good": Case("checkpoint", "the trained FER face checkpoint (control)",
                      {e: OK for e in CKPT_ALL}, quick=True),
    "gadget_open": Case("checkpoint", "encoder _target_ builtins.open(canary/opened.txt, 'w')",
                        {e: REFUSE for e in CKPT_ALL}, quick=True),
    "gadget_write_text": Case("checkpoint", "encoder _target_ pathlib.Path.write_text into the canary",
                              {e: REFUSE for e in CKPT_ALL}),
    "gadget_copyfile": Case("checkpoint", "encoder _target_ shutil.copyfile(secret, canary/copied.txt)",
                            {e: REFUSE for e in CKPT_ALL}),
    "gadget_makedirs": Case("checkpoint", "encoder _target_ os.makedirs(canary/made/deep)",
                            {e: REFUSE for e in CKPT_ALL}),
    "gadget_data": Case("checkpoint", "data _target_ os.makedirs(canary/data_made) (eval builds the stored data)",
                        {e: REFUSE for e in CKPT_ALL}),
    "ckpt_no_hparams": Case("checkpoint", "no hyper_parameters", {e: REFUSE for e in CKPT_ALL}, quick=True),
    "ckpt_partial_hparams": Case("checkpoint", "hyper_parameters with the labels only", {e: REFUSE for e in CKPT_ALL}),
    "ckpt_empty": Case("checkpoint", "a 0-byte .ckpt", {e: REFUSE for e in CKPT_ALL}),
    "ckpt_truncated": Case("checkpoint", "the first half of a good .ckpt", {e: REFUSE for e in CKPT_ALL}),
    "ckpt_pickled_code": Case("checkpoint", "a pickled object whose unpickling opens a file in the canary",
                              {e: REFUSE for e in CKPT_ALL}),
    "ckpt_jpeg": Case("checkpoint", "a JPEG named .ckpt", {e: REFUSE for e in CKPT_ALL}),
    "ckpt_bad_shapes": Case("checkpoint", "a weight of the wrong shape", {e: REFUSE for e in CKPT_ALL}),
    "ckpt_nan_weights": Case("checkpoint", "every floating weight NaN",
                             {"predict": REFUSE, "eval": REFUSE, "serve": REFUSE}),
    # datasets
    "fer_good": Case("dataset", "a FER folder tree without bad files (control)",
                     {"validate": OK, "train": OK, "eval": OK}),
    "fer_bad_files": Case("dataset", "FER tree with a truncated JPEG and a 0-byte PNG in train/happy", {
        "validate": flag(r'"unreadable": ([2-9]|\d{2,})', names=(r"truncated\.jpg|zero\.png",))}),
    "fer_bomb": Case("dataset", "FER tree with truncated/0-byte images, a PNG bomb in train, a header bomb in val",
                     {"validate": flag(BOMBS, names=(BOMBS,)), "train": flag(BOMBS, names=(BOMBS,)),
                      "eval": flag(r"bomb_header\.png", names=(r"bomb_header\.png",))}),
    "fer_missing_class": Case("dataset", "FER tree whose train/disgust is empty", {
        "validate": flag(r"(?i)disgust", names=(r"(?i)disgust",)),
        "train": flag(r"(?i)(no|without|missing|empty|absent)[^\n]{0,80}disgust|disgust[^\n]{0,80}"
                      r"(no |without|missing|empty|absent)", names=(r"(?i)disgust",))}, quick=True),
    "fer_val_unreadable": Case("dataset", "FER tree whose every validation image is truncated", {
        "validate": Expect("refuse", names=(r"(?i)/val\b", r"(?i)validation split", r"(?i)\bval split")),
        "train": Expect("refuse", names=(r"(?i)/val\b", r"(?i)validation split", r"(?i)\bval split")),
        "eval": Expect("refuse", names=(r"(?i)/val\b", r"(?i)validation split", r"(?i)\bval split",
                                        r"(?i)test split"))}),
    "ravdess_unreadable_actor": Case("dataset", "RAVDESS tree (6 actors, 8 emotions) whose Actor_02 is mode 000", {
        "validate": flag(r"Actor_02", names=(r"Actor_02",)), "train": flag(r"Actor_02", names=(r"Actor_02",))}),
    "meld_broken_csv": Case("dataset", "MELD train CSV with an unterminated quote and a short row", {
        "validate": flag(TRAIN_CSV, names=(TRAIN_CSV,)), "train": flag(TRAIN_CSV, names=(TRAIN_CSV,))}),
    "meld_empty_csv": Case("dataset", "MELD train CSV of 0 bytes", {"validate": Expect("refuse", names=(TRAIN_CSV,)),
                                                                    "train": Expect("refuse", names=(TRAIN_CSV,))}),
    "meld_cp1252_csv": Case("dataset", "MELD train CSV in Windows-1252", {"validate": OK, "train": OK}),
    # faults
    "truncated_last_ckpt": Case("fault", "checkpoints/last.ckpt cut to 77% (full disk), then ckpt_path=last", {
        "train": flag(r"(?i)(damaged|truncated|corrupt|cannot read|unreadable|incomplete)[^\n]{0,300}last\.ckpt|"
                      r"last\.ckpt[^\n]{0,300}(damaged|truncated|corrupt|cannot read|unreadable|incomplete)",
                      names=(r"last\.ckpt",))}),
    # HTTP requests to the app (each through the ASGI driver)
    "json_pad_cl": Case("http", "POST /api/predict/text, JSON {text, pad: 48 MB}, with Content-Length",
                        {"serve": Expect("refuse", max_read=TEXT_READ)}),
    "json_pad_nocl": Case("http", "the same without Content-Length", {"serve": Expect("refuse", max_read=TEXT_READ)},
                          quick=True),
    "json_pad_chunked": Case("http", "the same, Transfer-Encoding: chunked",
                             {"serve": Expect("refuse", max_read=TEXT_READ)}),
    "json_text_huge": Case("http", "JSON whose text value is 48 MB, no Content-Length",
                           {"serve": Expect("refuse", max_read=TEXT_READ)}),
    "form_text_huge": Case("http", "multipart text field of 48 MB, no Content-Length",
                           {"serve": Expect("refuse", max_read=TEXT_READ)}),
    "urlencoded_huge": Case("http", "urlencoded text of 48 MB, no Content-Length",
                            {"serve": Expect("refuse", max_read=TEXT_READ)}),
    "image_oversize_cl": Case("http", "a 24 MB image upload (cap 10 MB) with Content-Length",
                              {"serve": Expect("refuse", max_read=UPLOAD_READ)}),
    "image_oversize_chunked": Case("http", "the same, chunked", {"serve": Expect("refuse", max_read=UPLOAD_READ)}),
    "json_malformed": Case("http", "JSON body cut short", {"serve": REFUSE}),
    "json_not_object": Case("http", "a JSON list", {"serve": REFUSE}),
    "json_text_not_string": Case("http", "JSON text: 5", {"serve": REFUSE}),
    "text_plain_body": Case("http", "Content-Type text/plain", {"serve": REFUSE}),
    "text_over_cap": Case("http", "a 6000-character text (cap 5000)", {"serve": REFUSE}),
    "multipart_no_boundary": Case("http", "multipart/form-data without a boundary", {"serve": REFUSE}),
    "multipart_truncated": Case("http", "a multipart image upload without its closing boundary", {"serve": REFUSE}),
    "upload_missing_field": Case("http", "multipart image upload under the field name `photo`", {"serve": REFUSE}),
    "text_as_image": Case("http", "bm_txt (BMP magic, English text) uploaded as an image", {"serve": REFUSE}),
    "text_as_audio": Case("http", "id3_txt (MP3 magic, English text) uploaded as audio", {"serve": REFUSE}),
    # WebSocket messages to /ws/live (each followed by a probe that the session still answers)
    "ws_good": Case("websocket", "hello at 16 kHz, then a good JPEG frame (control)", {"serve": OK}),
    "ws_hello_non_numeric": Case("websocket", 'hello with sample_rate "fast"', {"serve": REFUSE}),
    "ws_hello_nan": Case("websocket", "hello with sample_rate NaN", {"serve": REFUSE}, quick=True),
    "ws_hello_inf": Case("websocket", "hello with sample_rate 1e999 (infinity)", {"serve": REFUSE}),
    "ws_hello_huge": Case("websocket", "hello with sample_rate 10**12", {"serve": REFUSE}),
    "ws_hello_list": Case("websocket", "hello with sample_rate [48000]", {"serve": REFUSE}),
    "ws_not_json": Case("websocket", "a text message that is not JSON", {"serve": REFUSE}),
    "ws_unknown_kind": Case("websocket", "a binary message of unknown type 9", {"serve": REFUSE}),
    "ws_bad_frame": Case("websocket", "a frame message whose JPEG is garbage", {"serve": REFUSE}),
    "ws_odd_pcm": Case("websocket", "an audio message of 3 bytes (not float32)", {"serve": REFUSE}),
    "ws_no_token": Case("websocket", "a socket without the token on a server that needs one (close 4401)",
                        {"serve": REFUSE}),
}

#: Phrases no error message should carry: (regex, problem, remote only). A CLI may name the
#: user's own files wherever they are; the server's answers to a client must not show its paths.
FORBIDDEN = ((r"weights_only`?\s*(=|set to)\s*`?False|can still be loaded", "advises loading it unsafely", False),
             (r"/tmp/|/var/folders/|\btmp[a-z0-9_]{8}\b", "leaks a temporary path", True))
#: Library caches allowed under HOME (relative paths).
HOME_CACHES = (".cache/matplotlib", ".config/matplotlib")
PROGRAMMING_ERRORS = ("TypeError", "KeyError", "AttributeError", "IndexError", "NameError", "AssertionError",
                      "UnboundLocalError", "ZeroDivisionError", "RecursionError", "EOFError", "MemoryError",
                      "NotImplementedError", "UnpicklingError")
TRACEBACK = "Traceback (most recent call last):"


# -- classification -----------------------------------------------------------------------------
@dataclass
class Observation:
    """What one run did, reduced: ``status`` result | refusal | crash; ``detail`` one line;
    ``text`` what flag / check regexes read; ``message`` the error shown (refusals);
    ``traceback`` whether a Python traceback was printed; ``read``/``problems``: see module doc."""
    status: str
    detail: str = ""
    text: str = ""
    message: str = ""
    traceback: bool = False
    read: int | None = None
    problems: list[str] = field(default_factory=list)


def names_input(message: str, needles: Iterable[str]) -> bool:
    """Whether ``message`` names the input: one of ``needles`` (regexes) matches."""
    return any(re.search(n, message) for n in needles if n)


def message_problems(obs: Observation, needles: Iterable[str], remote: bool = False) -> list[str]:
    """Problems of a refusal's message (see the module docstring); ``remote``: an answer to a
    client of the server."""
    probs = list(obs.problems)
    if obs.status != "refusal":
        return probs
    if not names_input(obs.message, needles):
        probs.append("does not name the input")
    if obs.traceback:
        probs.append("traceback shown")
    probs += [what for pat, what, remote_only in FORBIDDEN
              if (remote or not remote_only) and re.search(pat, obs.message)]
    return probs


def classify(expect: Expect, obs: Observation) -> tuple[str, str]:
    """``(category, reason)`` of one run (the table in the module docstring)."""
    detail = obs.detail or obs.message
    if obs.status == "crash":
        return "crash", detail
    if obs.status == "refusal":
        if expect.max_read is not None and obs.read is not None and obs.read > expect.max_read:
            return "silent_wrong", (f"refused only after reading {obs.read / MB:.1f} MB of the body "
                                    f"(allowed {expect.max_read / MB:.1f} MB): not capped while read")
        return "clear_error", ("refused a good input: " if expect.want == "ok" else "") + one_line(detail)
    if obs.status != "result":
        raise ValueError(f"status={obs.status!r}")
    if expect.want == "refuse":
        return "silent_wrong", "a result where a refusal was due: " + one_line(detail)
    if expect.want == "flag":
        if re.search(expect.flag, obs.text):
            return "ok", "flagged: " + one_line(detail)
        return "silent_wrong", f"a result without the expected note /{expect.flag[:60]}/: " + one_line(detail)
    if expect.check and not re.search(expect.check, obs.text):
        return "silent_wrong", f"a result that fails its check /{expect.check[:60]}/: " + one_line(detail)
    return "ok", one_line(detail)


def one_line(s: str, n: int = 240) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 3] + "..."


def final_exception(output: str) -> str:
    """The final exception line(s) of the last traceback in ``output`` ("Type: message")."""
    block = output[output.rfind(TRACEBACK):]
    lines, msg = block.splitlines()[1:], []
    for line in lines:
        if msg:
            if not line.strip() or line.startswith("Set the environment variable HYDRA_FULL_ERROR"):
                break
            msg.append(line)
        elif line and not line[0].isspace():
            msg.append(line)
    return "\n".join(msg)


def exception_type(message: str) -> str:
    head = message.split(":", 1)[0].strip()
    return head.rsplit(".", 1)[-1]


def strip_echo(output: str) -> str:
    """``output`` without the lines that merely repeat the command (Hydra's overrides line)."""
    return "\n".join(line for line in output.splitlines()
                     if not line.startswith("Error executing job with overrides"))


def observe_cli(rc: int | None, output: str, timed_out: bool, needles: Iterable[str], seconds: float = 0.0,
                text: str = "") -> Observation:
    """An Observation of a finished CLI run: exit code, combined stdout/stderr."""
    if timed_out:
        return Observation("crash", f"timed out after {seconds:.0f} s")
    if rc is None or rc < 0:
        return Observation("crash", f"killed by signal {-(rc or 0)}")
    tb = TRACEBACK in output
    if rc == 0:
        return Observation("result", "exit 0", text=text or output, traceback=tb)
    if tb:
        msg = final_exception(output)
        if exception_type(msg) in PROGRAMMING_ERRORS or not names_input(msg, needles):
            return Observation("crash", f"exit {rc}, uncaught {one_line(msg, 200)}", message=msg, traceback=True)
        return Observation("refusal", f"exit {rc}: {one_line(msg, 200)}", message=msg, traceback=True,
                           text=text)
    clean = strip_echo(output)
    lines = [line for line in clean.splitlines() if line.strip()]
    telling = [line for line in lines if re.search(r"(?i)error|problem|unusable|cannot|refus|fail", line)]
    return Observation("refusal", f"exit {rc}: {one_line(' | '.join((telling or lines)[-3:]), 200)}", message=clean,
                       text=text)


def observe_record(record: dict | None, proc_obs: Observation) -> Observation:
    """predict's JSONL line for the one input (or the process's observation when none)."""
    if record is None:
        if proc_obs.status == "result":
            return Observation("crash", "exit 0 without a prediction line")
        return proc_obs
    text = json.dumps({k: v for k, v in record.items() if k != "input"}, ensure_ascii=False)  # not the file name
    if record.get("error"):
        return Observation("refusal", "error line: " + one_line(record["error"], 200),
                           message=record["error"] + " " + str(record.get("input", "")), text=text)
    summary = record.get("label") or (record.get("faces") or [{}])[0].get("label")
    return Observation("result", f"predicted {record.get('kind')}: {summary}", text=text)


def observe_http(resp: dict) -> Observation:
    """An answer of the ASGI driver: ``status``, ``body``, ``read``, ``exception``."""
    status, body, read = resp.get("status"), resp.get("body", ""), resp.get("read")
    if resp.get("exception"):
        return Observation("crash", f"the app raised {one_line(resp['exception'].strip().splitlines()[-1], 200)}",
                           read=read, traceback=True)
    if status is None:
        return Observation("crash", "no answer (connection dropped)", read=read)
    if status >= 500:
        return Observation("crash", f"HTTP {status}: {one_line(body, 200)}", read=read)
    if status >= 400:
        problems = []
        try:
            err = json.loads(body)["error"]
            msg = f"{err.get('code')}: {err.get('message')}"
        except (ValueError, KeyError, TypeError):
            msg, problems = body, ["not a JSON error"]
        return Observation("refusal", f"HTTP {status} {one_line(msg, 200)}", message=msg, read=read,
                           problems=problems)
    return Observation("result", f"HTTP {status}", text=body, read=read)


def observe_ws(resp: dict) -> Observation:
    """A WebSocket session of the ASGI driver: ``accepted``, ``close`` code, ``replies`` to
    the case's messages, ``probe`` (the reply to the probe), ``exception``."""
    if resp.get("exception"):
        return Observation("crash", "the session raised " + one_line(resp["exception"].strip().splitlines()[-1], 200)
                           + " (connection dropped)", traceback=True)
    if not resp.get("accepted"):
        if resp.get("close") is not None:
            return Observation("refusal", f"closed before accepting (HTTP 403), code {resp['close']}",
                               message=f"close {resp['close']}", problems=["HTTP 403 instead of close code 4401"])
        return Observation("crash", "neither accepted nor closed")
    if resp.get("close") is not None and resp.get("close") != 1000:
        return Observation("refusal", f"closed with code {resp['close']}", message=f"close {resp['close']}")
    errors = [r for r in resp.get("replies", []) if r.get("type") == "error"]
    if not resp.get("probe"):
        return Observation("crash", "the session stopped answering after the message")
    if errors:
        msg = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        return Observation("refusal", "error message, session alive: " + one_line(msg, 200), message=msg)
    return Observation("result", "replies: " + one_line(json.dumps(resp.get("replies"))[:300]),
                       text=json.dumps(resp.get("replies")))


# -- sandboxes, snapshots, child processes -----------------------------------------------------
def snapshot(paths: Iterable[Path]) -> dict[str, tuple]:
    """Every file and folder under ``paths``: path -> (kind, size, mtime_ns)."""
    out: dict[str, tuple] = {}
    for root in paths:
        root = Path(root)
        if root.is_file():
            st = root.stat()
            out[str(root)] = ("f", st.st_size, st.st_mtime_ns)
            continue
        for dirpath, dirs, files in os.walk(root):
            for d in dirs:
                out[os.path.join(dirpath, d)] = ("d", 0, 0)
            for f in files:
                p = os.path.join(dirpath, f)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                out[p] = ("f", st.st_size, st.st_mtime_ns)
    return out


def changes(before: dict, after: dict, allowed: Iterable[str] = ()) -> list[str]:
    """Created / changed / removed entries, minus those under ``allowed`` folders (and the
    folders above them, e.g. ``~/.cache`` made for ``~/.cache/matplotlib``)."""
    allowed = tuple(allowed)
    out = []
    for p in sorted(set(before) | set(after)):
        if allowed and (p.startswith(allowed) or any(a.startswith(p + os.sep) for a in allowed)):
            continue
        if p not in before:
            out.append(f"created {p}")
        elif p not in after:
            out.append(f"removed {p}")
        elif before[p] != after[p]:
            out.append(f"changed {p}")
    return out


@dataclass
class Box:
    """One run's folders: ``home``, ``cwd``, ``tmp``, ``canary`` (watched: nothing may appear),
    ``out`` (declared outputs), ``inp`` (inputs made for this run)."""
    root: Path

    def __post_init__(self):
        for d in ("home", "cwd", "tmp", "canary", "out", "inp"):
            (self.root / d).mkdir(parents=True, exist_ok=True)

    home = property(lambda self: self.root / "home")
    cwd = property(lambda self: self.root / "cwd")
    tmp = property(lambda self: self.root / "tmp")
    canary = property(lambda self: self.root / "canary")
    out = property(lambda self: self.root / "out")
    inp = property(lambda self: self.root / "inp")


@dataclass
class Proc:
    rc: int | None
    output: str
    timed_out: bool
    seconds: float
    wrote: list[str]
    served: dict | None = None


def drop_read_override() -> None:
    """Make a root process obey file modes: drop ``CAP_DAC_OVERRIDE`` and
    ``CAP_DAC_READ_SEARCH`` from its bounding, permitted, effective and inheritable sets
    (root otherwise reads a mode-000 folder; a user does not). A no-op for other users."""
    if os.geteuid() != 0:
        return
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    dac_override, dac_read_search, pr_capbset_drop = 1, 2, 24
    for cap in (dac_override, dac_read_search):
        libc.prctl(pr_capbset_drop, cap, 0, 0, 0)      # survives exec
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    keep = ~((1 << dac_override) | (1 << dac_read_search)) & 0xFFFFFFFF
    for name in ("effective", "permitted", "inheritable"):
        setattr(data[0], name, getattr(data[0], name) & keep)
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_get(port: int, path: str) -> dict:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
            return {"status": r.status, "body": r.read(4000).decode("utf-8", "replace")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read(4000).decode("utf-8", "replace")}
    except OSError as e:
        return {"status": None, "body": str(e)}


#: What a forked child finds imported already (not onnxruntime / matplotlib: their import-time
#: effects, e.g. on HOME, must happen inside the run that uses them).
PRELOAD = ("numpy", "torch", "lightning", "hydra", "omegaconf", "PIL.Image", "soundfile", "av", "cv2", "timm",
           "fastapi", "uvicorn", "emomm.models.module", "emomm.inference.predictor", "emomm.inference.batch",
           "emomm.data.datasets.fer2013", "emomm.data.datasets.ravdess", "emomm.data.datasets.meld",
           "emomm.data.synthetic", "emomm.data.health", "emomm.serve.app", "emomm.serve.engine", "emomm.live.stream")


class Runner:
    """Runs ``python ARGV`` children in a :class:`Box` (forked from here, or ``--exec``)."""

    def __init__(self, work: Path, fork: bool = True, log: Callable[[str], None] = print) -> None:
        self.work, self.fork, self.log = work, fork, log
        self.n = 0
        self.own_home = Path(os.environ.get("HOME", "/nonexistent"))
        if fork:
            import importlib
            for name in PRELOAD:
                importlib.import_module(name)

    def box(self, label: str) -> Box:
        self.n += 1
        return Box(self.work / "runs" / f"{self.n:03d}_{re.sub(r'[^A-Za-z0-9_]+', '_', label)}")

    def env(self, box: Box) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.update(HOME=str(box.home), TMPDIR=str(box.tmp), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="offline", PYTHONUNBUFFERED="1")
        return env

    def run(self, argv: list[str], box: Box, timeout: float, watch: Iterable[Path] = (), obey_modes: bool = False,
            serve_port: int | None = None) -> Proc:
        """Run ``python *argv`` in ``box``; watched: HOME, TMPDIR, cwd, canary, ``watch``
        (and this process's HOME in fork mode). ``obey_modes``: a root child loses its power to
        read through file modes (:func:`drop_read_override`). ``serve_port``: a server that
        comes up there is asked ``GET /api/model`` and stopped (``Proc.served``)."""
        watched = [box.home, box.tmp, box.cwd, box.canary, *watch] + ([self.own_home] if self.fork else [])
        before = snapshot(watched)
        log_path = box.root / "output.txt"
        start = time.time()
        with open(log_path, "wb") as logf:
            pid = self._start(argv, box, logf, obey_modes)
            rc, timed_out, served = self._wait(pid, start, timeout, serve_port)
        seconds = time.time() - start
        output = log_path.read_text(errors="replace")
        allowed = [str(box.home / c) for c in HOME_CACHES] + [str(self.own_home / c) for c in HOME_CACHES]
        wrote = changes(before, snapshot(watched), allowed)
        return Proc(rc, output, timed_out, seconds, wrote, served)

    def _start(self, argv: list[str], box: Box, logf, obey_modes: bool) -> Any:
        env = self.env(box)
        if not self.fork:
            def pre():
                os.setsid()
                if obey_modes:
                    drop_read_override()
            return subprocess.Popen([sys.executable, *argv], cwd=box.cwd, env=env, stdout=logf,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=pre)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:
            os.setsid()
            os.dup2(logf.fileno(), 1)
            os.dup2(logf.fileno(), 2)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            if obey_modes:
                drop_read_override()
            os.environ.clear()
            os.environ.update(env)
            tempfile.tempdir = None
            os.chdir(box.cwd)
            code = _exec_in_child(argv)
        except BaseException:  # noqa: BLE001 - the child reports everything as a Python run would
            traceback.print_exc()
            code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _wait(self, pid, start: float, timeout: float, serve_port: int | None):
        served = None
        while True:
            rc = self._poll(pid)
            if rc is not None:
                return rc, False, served
            if serve_port and served is None and port_open(serve_port):
                served = {"model": http_get(serve_port, "/api/model")}
                self._kill(pid, signal.SIGTERM)
                deadline = time.time() + 15
                while self._poll(pid) is None and time.time() < deadline:
                    time.sleep(0.1)
                self._kill(pid, signal.SIGKILL)
                return self._reap(pid), False, served
            if time.time() - start > timeout:
                self._kill(pid, signal.SIGKILL)
                return self._reap(pid), True, served
            time.sleep(0.05)

    def _poll(self, pid) -> int | None:
        if not self.fork:
            return pid.poll()
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            return None
        self._status = os.waitstatus_to_exitcode(status)
        return self._status

    def _reap(self, pid) -> int | None:
        if not self.fork:
            return pid.wait()
        try:
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            return getattr(self, "_status", None)

    def _kill(self, pid, sig) -> None:
        try:
            os.killpg(pid if self.fork else pid.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _exec_in_child(argv: list[str]) -> int:
    """``python *argv`` inside a forked child: ``-m module args`` or ``script args``."""
    import runpy
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        target, runner = argv[1], runpy.run_module
        kwargs = {"run_name": "__main__", "alter_sys": True}
    else:
        sys.argv = list(argv)
        target, runner, kwargs = argv[0], runpy.run_path, {"run_name": "__main__"}
    try:
        runner(target, **kwargs)
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return 1
    return 0


# -- the ASGI driver (server cases) ---------------------------------------------------------------
CHUNK = 256 * KB


async def asgi_http(app, method: str, path: str, headers: list[tuple[str, str]], body: Iterable[bytes],
                    timeout: float = 120.0) -> dict:
    """One request straight into the ASGI ``app``; the body is fed chunk by chunk. Returns
    ``status``, ``body`` (first 4000 characters), ``read`` (body bytes the app took before it
    started its answer), ``exception`` (a traceback out of the app)."""
    chunks = iter(body)
    pending = next(chunks, None)
    state = {"read": 0, "read_at_start": None, "status": None, "body": b""}

    async def receive():
        nonlocal pending
        if pending is None or state["status"] is not None:   # all sent, or answered: the client leaves
            return {"type": "http.disconnect"}
        chunk, pending = pending, next(chunks, None)
        state["read"] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": pending is not None}

    async def send(msg):
        if msg["type"] == "http.response.start":
            state["status"], state["read_at_start"] = msg["status"], state["read"]
        elif msg["type"] == "http.response.body":
            state["body"] += msg.get("body", b"")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
             "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000)}
    exc = None
    try:
        await asyncio.wait_for(app(scope, receive, send), timeout)
    except Exception:  # noqa: BLE001 - what escapes the app is the finding
        exc = traceback.format_exc()
    return {"status": state["status"], "body": state["body"][:4000].decode("utf-8", "replace"),
            "read": state["read_at_start"] if state["read_at_start"] is not None else state["read"],
            "exception": exc}


async def asgi_ws(app, messages: list[dict], headers: list[tuple[str, str]] = (), wait: float = 5.0,
                  frame_wait: float = 60.0) -> dict:
    """A WebSocket session: connect, send ``messages`` (ASGI ``websocket.receive`` dicts) one
    at a time waiting for a reply to each, then a probe (an unknown binary type, which a
    live session answers with an error), then disconnect."""
    inbox: asyncio.Queue = asyncio.Queue()
    events: list[dict] = []
    got = asyncio.Event()

    async def receive():
        return await inbox.get()

    async def send(msg):
        events.append(msg)
        got.set()

    scope = {"type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "ws",
             "path": "/ws/live", "raw_path": b"/ws/live", "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers], "subprotocols": [],
             "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000)}
    task = asyncio.ensure_future(app(scope, receive, send))

    async def until(pred, limit):
        deadline = time.time() + limit
        while not pred() and not task.done() and time.time() < deadline:
            got.clear()
            try:
                await asyncio.wait_for(got.wait(), max(0.01, deadline - time.time()))
            except asyncio.TimeoutError:
                break

    def texts(from_i: int) -> list[dict]:
        out = []
        for e in events[from_i:]:
            if e["type"] == "websocket.send" and e.get("text"):
                try:
                    out.append(json.loads(e["text"]))
                except ValueError:
                    out.append({"type": "unparsable", "text": e["text"][:200]})
        return out

    def closed():
        return next((e.get("code", 1000) for e in events if e["type"] == "websocket.close"), None)

    await inbox.put({"type": "websocket.connect"})
    await until(lambda: any(e["type"] in ("websocket.accept", "websocket.close") for e in events), 30)
    accepted = any(e["type"] == "websocket.accept" for e in events)
    result: dict[str, Any] = {"accepted": accepted, "replies": [], "probe": None, "exception": None}
    if accepted:
        await until(lambda: bool(texts(0)) or closed() is not None, 30)         # "ready"
        for m in (messages if closed() is None else []):
            n = len(events)
            await inbox.put({"type": "websocket.receive", **m})
            is_frame = m.get("bytes", b"")[:1] == b"\x01"
            await until(lambda: len(events) > n, frame_wait if is_frame else wait)
            result["replies"] += texts(n)
        n = len(events)
        if not task.done() and closed() is None:
            await inbox.put({"type": "websocket.receive", "bytes": b"\x09probe"})
            await until(lambda: len(events) > n, wait)
            probe = [r for r in texts(n) if r.get("type") == "error"]
            result["probe"] = probe[0] if probe else None
    result["close"] = closed()
    await inbox.put({"type": "websocket.disconnect", "code": 1000})
    try:
        await asyncio.wait_for(task, 30)
    except Exception:  # noqa: BLE001
        result["exception"] = traceback.format_exc()
    return result


def multipart(field_name: str, filename: str | None, data: bytes, boundary: str = "emommboundary",
              close: bool = True) -> tuple[str, bytes]:
    disp = f'form-data; name="{field_name}"' + (f'; filename="{filename}"' if filename is not None else "")
    body = (f"--{boundary}\r\nContent-Disposition: {disp}\r\nContent-Type: application/octet-stream\r\n\r\n"
            .encode() + data + (f"\r\n--{boundary}--\r\n".encode() if close else b""))
    return f"multipart/form-data; boundary={boundary}", body


def chunked(data: bytes) -> list[bytes]:
    return [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]


def padded_json(prefix: bytes, size: int, suffix: bytes) -> Iterable[bytes]:
    """A JSON body ``prefix + 'x' * size + suffix``, generated chunk by chunk."""
    yield prefix
    block = b"x" * CHUNK
    for _ in range(size // CHUNK):
        yield block
    yield suffix


HUGE = 48 * MB


def http_requests(media: dict[str, Path]) -> dict[str, tuple]:
    """case -> (method, path, headers, body chunks factory) for the HTTP cases and the media
    uploads (``upload_<endpoint>`` of each media case the table sends to the server)."""
    jt = [("content-type", "application/json")]
    pad_pre, pad_suf = b'{"text": "I am happy", "pad": "', b'"}'
    pad_len = len(pad_pre) + (HUGE // CHUNK) * CHUNK + len(pad_suf)
    big_image = media["good_jpg"].read_bytes() + b"\x00" * (24 * MB)
    ctype, big_body = multipart("file", "big.jpg", big_image)
    reqs = {
        "json_pad_cl": ("POST", "/api/predict/text", jt + [("content-length", str(pad_len))],
                        lambda: padded_json(pad_pre, HUGE, pad_suf)),
        "json_pad_nocl": ("POST", "/api/predict/text", jt, lambda: padded_json(pad_pre, HUGE, pad_suf)),
        "json_pad_chunked": ("POST", "/api/predict/text", jt + [("transfer-encoding", "chunked")],
                             lambda: padded_json(pad_pre, HUGE, pad_suf)),
        "json_text_huge": ("POST", "/api/predict/text", jt, lambda: padded_json(b'{"text": "', HUGE, b'"}')),
        "form_text_huge": ("POST", "/api/predict/text", [("content-type", "multipart/form-data; boundary=b0")],
                           lambda: padded_json(b'--b0\r\nContent-Disposition: form-data; name="text"\r\n\r\n', HUGE,
                                               b"\r\n--b0--\r\n")),
        "urlencoded_huge": ("POST", "/api/predict/text", [("content-type", "application/x-www-form-urlencoded")],
                            lambda: padded_json(b"text=", HUGE, b"")),
        "image_oversize_cl": ("POST", "/api/predict/image", [("content-type", ctype),
                                                             ("content-length", str(len(big_body)))],
                              lambda: chunked(big_body)),
        "image_oversize_chunked": ("POST", "/api/predict/image", [("content-type", ctype),
                                                                  ("transfer-encoding", "chunked")],
                                   lambda: chunked(big_body)),
        "json_malformed": ("POST", "/api/predict/text", jt, lambda: [b'{"text": "I am happy"']),
        "json_not_object": ("POST", "/api/predict/text", jt, lambda: [b'["I am happy"]']),
        "json_text_not_string": ("POST", "/api/predict/text", jt, lambda: [b'{"text": 5}']),
        "text_plain_body": ("POST", "/api/predict/text", [("content-type", "text/plain")], lambda: [b"I am happy"]),
        "text_over_cap": ("POST", "/api/predict/text", jt, lambda: [json.dumps({"text": "happy " * 1000}).encode()]),
        "good_txt": ("POST", "/api/predict/text", jt,
                     lambda: [json.dumps({"text": media["good_txt"].read_text()}).encode()]),
        "empty_txt": ("POST", "/api/predict/text", jt, lambda: [b'{"text": ""}']),
        "blank_txt": ("POST", "/api/predict/text", jt, lambda: [b'{"text": "   \\n\\t "}']),
        "huge_txt": ("POST", "/api/predict/text", jt,
                     lambda: [json.dumps({"text": media["huge_txt"].read_text()[:200_000]}).encode()]),
        "multipart_no_boundary": ("POST", "/api/predict/image", [("content-type", "multipart/form-data")],
                                  lambda: [media["good_jpg"].read_bytes()]),
    }
    upload = {"image": ("good_jpg", "truncated_jpg", "zero_png", "rgba_png", "png16", "bomb_png", "bomb_header_png",
                        "cp1252_csv"),
              "audio": ("good_wav", "truncated_wav", "zero_wav", "nan_wav", "silent_wav", "one_sample_wav",
                        "one_hz_wav"),
              "video": ("good_mp4", "truncated_mp4", "zero_mp4", "noface_mp4")}
    for endpoint, cases in upload.items():
        for case in cases:
            ct, body = multipart("file", media[case].name, media[case].read_bytes())
            reqs[case] = ("POST", f"/api/predict/{endpoint}", [("content-type", ct)], (lambda b=body: [b]))
    for case, src, endpoint in (("text_as_image", "bm_txt", "image"), ("text_as_audio", "id3_txt", "audio")):
        ct, body = multipart("file", media[src].name, media[src].read_bytes())
        reqs[case] = ("POST", f"/api/predict/{endpoint}", [("content-type", ct)], (lambda b=body: [b]))
    ct, body = multipart("file", "good.jpg", media["good_jpg"].read_bytes(), close=False)
    reqs["multipart_truncated"] = ("POST", "/api/predict/image", [("content-type", ct)], lambda b=body: [b])
    ct, body = multipart("photo", "good.jpg", media["good_jpg"].read_bytes())
    reqs["upload_missing_field"] = ("POST", "/api/predict/image", [("content-type", ct)], lambda b=body: [b])
    return reqs


def ws_scripts(media: dict[str, Path]) -> dict[str, tuple[list[dict], bool]]:
    """case -> (messages, needs the token app)."""
    hello = lambda rate: {"text": '{"type": "hello", "sample_rate": %s}' % rate}  # noqa: E731
    frame = b"\x01" + media["good_jpg"].read_bytes()
    return {
        "ws_good": ([hello("16000"), {"bytes": frame}], False),
        "ws_hello_non_numeric": ([hello('"fast"')], False),
        "ws_hello_nan": ([hello("NaN")], False),
        "ws_hello_inf": ([hello("1e999")], False),
        "ws_hello_huge": ([hello(str(10 ** 12))], False),
        "ws_hello_list": ([hello("[48000]")], False),
        "ws_not_json": ([{"text": "hello there"}], False),
        "ws_unknown_kind": ([{"bytes": b"\x09abc"}], False),
        "ws_bad_frame": ([{"bytes": b"\x01this is not a jpeg"}], False),
        "ws_odd_pcm": ([{"bytes": b"\x02abc"}], False),
        "ws_no_token": ([], True),
    }


def serve_session(spec_path: str) -> None:
    """Child: every HTTP / WebSocket case against the app of ``spec["ckpt"]``; writes the raw
    answers (and, per case, files written under the watched folders) to ``spec["out"]``."""
    from emomm.serve.app import ServeSettings, create_app
    from emomm.serve.engine import ServeEngine

    spec = json.loads(Path(spec_path).read_text())
    media = {k: Path(v) for k, v in spec["media"].items()}
    watched = [Path(p) for p in spec["watch"]]
    engine = ServeEngine.from_checkpoint(spec["ckpt"])
    app, app_token = create_app(engine, ServeSettings()), create_app(engine, ServeSettings(token="s3cret-token"))
    reqs, scripts = http_requests(media), ws_scripts(media)
    answers = {}
    for case in spec["cases"]:
        before = snapshot(watched)
        t0 = time.time()
        if case in scripts:
            messages, token = scripts[case]
            resp = asyncio.run(asgi_ws(app_token if token else app, messages))
            resp["kind"] = "ws"
        else:
            method, path, headers, body = reqs[case]
            resp = asyncio.run(asgi_http(app, method, path, headers, body()))
            resp["kind"] = "http"
        resp["seconds"] = round(time.time() - t0, 2)
        resp["wrote"] = changes(before, snapshot(watched), [str(Path(spec["home"]) / c) for c in HOME_CACHES])
        answers[case] = resp
        print(f"{case}: {resp.get('status', resp.get('accepted'))} in {resp['seconds']} s", flush=True)
    Path(spec["out"]).write_text(json.dumps(answers))


# -- the benchmark ---------------------------------------------------------------------------------
MM = ["modality=multimodal", "modalities=[face,voice,text]", "fusion=late", "model/face_encoder=timm",
      "model.encoders.face.backbone=resnet10t", "face.image_size=32", "face.in_chans=3", "voice.duration=1.0",
      "data.n_train=28", "data.n_val=7", "data.n_test=7", "data.batch_size=7", "debug=limit", "trainer.max_epochs=1"]
FER_TINY = ["data=fer2013", "model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=32",
            "data.batch_size=8", "debug=limit", "trainer.max_epochs=1"]
RAVDESS_TINY = ["modality=voice", "data=ravdess", "voice.duration=0.4", "data.load_workers=1", "data.batch_size=8",
                "debug=limit", "trainer.max_epochs=1"]
MELD_TINY = ["modality=text", "data=meld", "data.load_workers=1", "data.batch_size=4", "debug=limit",
             "trainer.max_epochs=1"]
TIMEOUT = {"predict": 180, "validate": 180, "train": 400, "eval": 240, "export": 300, "serve": 180, "live": 180}


@dataclass
class RunRecord:
    case: str
    cls: str
    entry: str
    want: str
    category: str
    reason: str
    wrote: list[str]
    message_problems: list[str]
    seconds: float


class Bench:
    def __init__(self, work: Path, quick: bool, fork: bool) -> None:
        self.work, self.quick = work, quick
        self.runner = Runner(work, fork=fork, log=self.log)
        self.records: list[RunRecord] = []
        self.notes: list[str] = []
        self._roots: dict[str, Path] = {}
        self.t0 = time.time()

    def log(self, msg: str) -> None:
        print(f"[{time.time() - self.t0:6.0f} s] {msg}", flush=True)

    def wanted(self, entry: str) -> list[str]:
        return [c for c, case in CASES.items() if entry in case.expect and (case.quick or not self.quick)]

    def record(self, case: str, entry: str, obs: Observation, wrote: list[str], seconds: float,
               needles: Iterable[str], remote: bool = False) -> None:
        exp = CASES[case].expect[entry]
        needles = list(exp.names) or list(needles)
        category, reason = classify(exp, obs)
        rec = RunRecord(case, CASES[case].cls, entry, exp.want, category, reason, wrote,
                        message_problems(obs, needles, remote) if category == "clear_error" else [],
                        round(seconds, 1))
        self.records.append(rec)
        mark = "" if category in ("ok", "clear_error") and not wrote else "  <--"
        wrote_note = f"  WROTE {len(wrote)}" if wrote else ""
        self.log(f"{entry:8s} {case:26s} {category:12s} {one_line(reason, 110)}{wrote_note}{mark}")

    def cli(self, entry: str, case: str, args: list[str], box: Box, needles: Iterable[str], watch=(),
            text_files: Callable[[], str] = lambda: "", obey_modes=False, serve_port=None, record=True) -> Proc:
        proc = self.runner.run(["-m", f"emomm.{entry}", *args], box, TIMEOUT[entry], watch=watch,
                               obey_modes=obey_modes, serve_port=serve_port)
        needles = list(CASES[case].expect[entry].names) or list(needles) if record else list(needles)
        if record:
            if proc.served is not None:
                obs = Observation("result", f"served; GET /api/model -> {proc.served['model']['status']}",
                                  text=proc.served["model"]["body"])
            else:
                obs = observe_cli(proc.rc, proc.output, proc.timed_out, needles, proc.seconds,
                                  text=proc.output + "\n" + text_files())
            self.record(case, entry, obs, proc.wrote, proc.seconds, needles)
        return proc

    # -- setup ------------------------------------------------------------------------------
    def setup(self) -> None:
        """The media corpus, the face + voice + text model (media cases) and the FER face
        model (checkpoint and dataset cases; its run is the ``train`` control ``fer_good``)."""
        from tests.bad_inputs import write_media_corpus
        self.media_dir = self.work / "media"
        self.media = write_media_corpus(self.media_dir)
        self.log(f"media corpus: {len(self.media)} files in {self.media_dir}")
        box = self.runner.box("setup_train_mm")
        proc = self.runner.run(["-m", "emomm.train", *MM, "test=false", f"paths.log_dir={box.out}/logs",
                                f"hydra.run.dir={box.out}/run"], box, TIMEOUT["train"])
        self.mm_ckpt = box.out / "run" / "checkpoints" / "best.ckpt"
        if not self.mm_ckpt.is_file():
            sys.exit(f"training the face+voice+text model failed (rc {proc.rc}); its output:\n{proc.output[-4000:]}")
        self.log(f"face+voice+text model: {self.mm_ckpt} ({proc.seconds:.0f} s)")
        if proc.wrote:
            self.notes.append(f"training the face+voice+text model wrote where nothing should: {proc.wrote[:5]}")
        box = self.runner.box("train_fer_good")
        proc = self.cli("train", "fer_good", self.train_args("fer_good") + [f"paths.log_dir={box.out}/logs"], box,
                        self.needles("fer_good"), watch=[self.data_root("fer_good")])
        found = sorted(box.out.glob("logs/**/checkpoints/best.ckpt"))
        if not found:
            sys.exit(f"training the FER face model failed (rc {proc.rc}); its output:\n{proc.output[-4000:]}")
        self.fer_ckpt, self.fer_logs = found[0], box.out / "logs"
        self.log(f"face model: {self.fer_ckpt} ({proc.seconds:.0f} s)")

    def data_root(self, case: str) -> Path:
        """The dataset of a dataset case (written on first use)."""
        from tests.bad_inputs import fer_variant, meld_csv_variant, ravdess_tree
        if case not in self._roots:
            base = self.work / "data" / case
            if case.startswith("fer_"):
                root = fer_variant(base, case[4:])
            elif case == "ravdess_unreadable_actor":
                root = ravdess_tree(base, emotions=range(1, 9), bad=False, symlinked=False, unreadable=2)
            else:
                root = meld_csv_variant(base, case.split("_")[1])
            self._roots[case] = root
        return self._roots[case]

    def data_args(self, case: str) -> list[str]:
        kind = case.split("_")[0]
        return [f"data={ {'fer': 'fer2013'}.get(kind, kind) }", f"data.root={self.data_root(case)}"]

    def train_args(self, case: str) -> list[str]:
        tiny = {"fer": FER_TINY, "ravdess": RAVDESS_TINY, "meld": MELD_TINY}[case.split("_")[0]]
        return tiny + [f"data.root={self.data_root(case)}"]

    def needles(self, case: str) -> list[str]:
        return [re.escape(str(self.data_root(case)))]

    # -- suites ---------------------------------------------------------------------------------
    def predict_media(self) -> None:
        for case in self.wanted("predict"):
            if case not in self.media:
                continue
            box = self.runner.box(f"predict_{case}")
            path = self.media[case]
            proc = self.cli("predict", case, [f"ckpt_path={self.mm_ckpt}", f"inputs=[{path}]",
                                              "predictor.detector=none", f"hydra.run.dir={box.out}",
                                              f"paths.log_dir={box.out}/logs"],
                            box, needles=[], watch=[self.media_dir], record=False)
            jsonl = box.out / "predictions.jsonl"
            lines = jsonl.read_text().splitlines() if jsonl.is_file() else []
            base = observe_cli(proc.rc, proc.output, proc.timed_out, [re.escape(path.name)], proc.seconds)
            obs = observe_record(json.loads(lines[0]) if lines else None, base)
            self.record(case, "predict", obs, proc.wrote, proc.seconds, [re.escape(str(path)), re.escape(path.name)])

    def checkpoints(self) -> None:
        from tests.bad_inputs import checkpoint_corpus
        import torch
        cases = [c for c in CASES if CASES[c].cls == "checkpoint" and (CASES[c].quick or not self.quick)]
        # Cases that aim at a canary are written per run (their paths are inside); the others once.
        per_run = {c for c in cases if c.startswith("gadget_") or c == "ckpt_pickled_code"}
        shared = self.work / "ckpts"
        fixed = checkpoint_corpus(self.fer_ckpt, shared, shared / "canary", shared / "secret.txt",
                                  only=set(cases) - per_run - {"ckpt_good"})
        fixed["ckpt_good"] = self.fer_ckpt
        slim = shared / "slim.ckpt"   # the good one without optimizer state: quicker to derive from
        torch.save({k: v for k, v in torch.load(self.fer_ckpt, map_location="cpu", weights_only=True).items()
                    if k not in ("optimizer_states", "lr_schedulers")}, slim)
        for case in cases:
            for entry in CKPT_ALL:
                if entry not in CASES[case].expect:
                    continue
                box = self.runner.box(f"{entry}_{case}")
                secret = box.inp / "secret.txt"
                secret.write_text("not for copying\n")
                if case in per_run:
                    ckpt = checkpoint_corpus(slim, box.inp, box.canary, secret, only={case})[case]
                else:
                    ckpt = fixed[case]
                needles = [re.escape(str(ckpt)), re.escape(ckpt.name)]
                args = [f"ckpt_path={ckpt}", f"hydra.run.dir={box.out}", f"paths.log_dir={box.out}/logs"]
                watch = [box.inp, ckpt.parent]
                if entry == "predict":
                    args += [f"inputs=[{self.media['good_jpg']}]", "predictor.detector=none"]
                    watch.append(self.media_dir)
                elif entry == "export":
                    args += [f"out_dir={box.out}/export"]
                elif entry == "live":
                    args += [f"source={self.media['good_mp4']}", "audio=none", "max_frames=3", "display=false",
                             f"jsonl={box.out}/timeline.jsonl"]
                    watch.append(self.media_dir)
                port = None
                if entry == "serve":
                    port = free_port()
                    args = [f"ckpt_path={ckpt}", f"port={port}"]
                self.cli(entry, case, args, box, needles, watch=watch, serve_port=port)

    def live_media(self) -> None:
        for case in self.wanted("live"):
            if case not in self.media:
                continue
            box = self.runner.box(f"live_{case}")
            path = self.media[case]
            is_video = path.suffix == ".mp4"
            source = path if is_video else self.media["good_mp4"]
            audio = "none" if is_video else path
            jsonl = box.out / "timeline.jsonl"
            args = [f"ckpt_path={self.mm_ckpt}", f"source={source}", f"audio={audio}", "display=false",
                    f"jsonl={jsonl}", "pipeline.voice_every_s=0.25"]
            self.cli("live", case, args, box, [re.escape(str(path)), re.escape(path.name)], watch=[self.media_dir],
                     text_files=lambda j=jsonl: live_summary(j))

    def serve_requests(self) -> None:
        cases = [c for c in CASES if "serve" in CASES[c].expect and CASES[c].cls != "checkpoint"
                 and (CASES[c].quick or not self.quick)]
        box = self.runner.box("serve_requests")
        spec = {"ckpt": str(self.mm_ckpt), "media": {k: str(v) for k, v in self.media.items()}, "cases": cases,
                "watch": [str(box.home), str(box.tmp), str(box.cwd), str(self.media_dir)],
                "home": str(box.home), "out": str(box.out / "answers.json")}
        (box.inp / "spec.json").write_text(json.dumps(spec))
        proc = self.runner.run(["-m", "benchmarks.bad_inputs", "--serve-session", str(box.inp / "spec.json")],
                               box, timeout=900, watch=[self.media_dir])
        answers = json.loads((box.out / "answers.json").read_text()) if (box.out / "answers.json").is_file() else {}
        if not answers:
            self.notes.append(f"the serve session produced no answers (rc {proc.rc}): {one_line(proc.output[-600:])}")
        for case in cases:
            resp = answers.get(case)
            if resp is None:
                obs = Observation("crash", "the session ended before this case (the server process died?)")
                wrote, secs = [], 0.0
            else:
                obs = observe_ws(resp) if resp["kind"] == "ws" else observe_http(resp)
                wrote, secs = resp["wrote"], resp["seconds"]
            # An upload's refusal should name the uploaded file; the answer to any other request
            # (JSON text, a WebSocket message) is about that request by definition.
            needles = [re.escape(self.media[case].name)] if CASES[case].cls == "media" else [r"."]
            self.record(case, "serve", obs, wrote, secs, needles, remote=True)
        if proc.wrote:
            self.notes.append(f"the serve session as a whole wrote: {proc.wrote[:10]}")

    def datasets(self) -> None:
        cases = [c for c in CASES if CASES[c].cls == "dataset" and (CASES[c].quick or not self.quick)]
        for case in cases:
            if "validate" not in CASES[case].expect:
                continue
            box = self.runner.box(f"validate_{case}")
            self.cli("validate", case, self.data_args(case) + [f"out={box.out}/report", f"hydra.run.dir={box.out}/run"],
                     box, self.needles(case), watch=[self.data_root(case)], obey_modes=case.startswith("ravdess"),
                     text_files=lambda b=box: read_texts(b.out / "report", ("validate.json", "validate.md")))
        for case in cases:
            if "train" not in CASES[case].expect or case == "fer_good":   # fer_good: trained in setup
                continue
            box = self.runner.box(f"train_{case}")
            self.cli("train", case, self.train_args(case) + [f"paths.log_dir={box.out}/logs"], box, self.needles(case),
                     watch=[self.data_root(case)], obey_modes=case.startswith("ravdess"))
        for case in cases:
            if "eval" not in CASES[case].expect:
                continue
            box = self.runner.box(f"eval_{case}")
            self.cli("eval", case, [f"ckpt_path={self.fer_ckpt}"] + self.data_args(case)
                     + [f"hydra.run.dir={box.out}/run", f"paths.log_dir={box.out}/logs"], box, self.needles(case),
                     watch=[self.data_root(case)])

    def faults(self) -> None:
        """``truncated_last_ckpt``: the FER control's run folder copied, its last.ckpt cut
        short (a full disk), then the same training with ``ckpt_path=last``."""
        from tests.bad_inputs import truncate_file
        if self.quick:
            return
        box = self.runner.box("train_truncated_last_ckpt")
        logs = box.inp / "logs"
        shutil.copytree(self.fer_logs, logs)
        last = sorted(logs.glob("**/checkpoints/last.ckpt"))
        if not last:
            self.notes.append("the FER control run wrote no last.ckpt: the fault case did not run")
            return
        truncate_file(last[0])
        self.cli("train", "truncated_last_ckpt",
                 self.train_args("fer_good") + [f"paths.log_dir={logs}", "ckpt_path=last"], box,
                 [re.escape(str(last[0])), r"last\.ckpt"], watch=[self.data_root("fer_good")])

    # -- totals ------------------------------------------------------------------------------------
    def totals(self) -> dict:
        def count(recs: list[RunRecord]) -> dict:
            c = Counter(r.category for r in recs)
            return {"runs": len(recs), **{k: c.get(k, 0) for k in CATEGORIES},
                    "wrote_files_where_nothing_should": sum(bool(r.wrote) for r in recs),
                    "unclear_messages": sum(bool(r.message_problems) for r in recs),
                    "clear_errors_with_traceback": sum("traceback shown" in r.message_problems for r in recs),
                    "refused_good_inputs": sum(r.want == "ok" and r.category == "clear_error" for r in recs)}
        recs = self.records
        total = count(recs)
        total["inputs"] = len({r.case for r in recs})
        failures = [f"{r.entry} {r.case}: {r.category}: {r.reason}"
                    + (f" [wrote: {'; '.join(r.wrote[:3])}]" if r.wrote else "")
                    for r in recs if r.category not in ("ok", "clear_error") or r.wrote]
        unclear = [f"{r.entry} {r.case}: {', '.join(r.message_problems)}: {r.reason}"
                   for r in recs if r.message_problems]
        return {"totals": total,
                "by_entry_point": {e: count([r for r in recs if r.entry == e]) for e in ENTRY_POINTS},
                "by_class": {c: count([r for r in recs if r.cls == c]) for c in sorted({r.cls for r in recs})},
                "failures": failures, "unclear_messages": unclear, "notes": self.notes,
                "runs": [asdict(r) for r in recs]}


#: --suites name -> Bench method.
SUITES = {"predict": "predict_media", "checkpoints": "checkpoints", "live": "live_media", "serve": "serve_requests",
          "datasets": "datasets", "faults": "faults"}


def live_summary(jsonl: Path) -> str:
    """The live timeline reduced to what the flags read: frames, voiced frames."""
    if not jsonl.is_file():
        return "no timeline"
    lines = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()]
    voiced = sum(bool((x.get("voice") or {}).get("speech")) for x in lines)
    faces = sum(len(x.get("faces") or []) for x in lines)
    return f"frames: {len(lines)}; voiced frames: {voiced} of {len(lines)}; faces: {faces}"


def read_texts(folder: Path, names: Iterable[str]) -> str:
    return "\n".join((folder / n).read_text(errors="replace") for n in names if (folder / n).is_file())


def make_writable(path: Path) -> None:
    for d, dirs, _ in os.walk(path):
        for x in dirs:
            try:
                os.chmod(os.path.join(d, x), 0o755)
            except OSError:
                pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke subset (the cases marked quick)")
    ap.add_argument("--name", default=None, help="result name (default bad_inputs, bad_inputs_quick with --quick)")
    ap.add_argument("--out", default=None, help="write the result JSON here instead of benchmarks/results/")
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--exec", dest="fork", action="store_false", help="a fresh interpreter per run (slower)")
    ap.add_argument("--suites", nargs="+", default=list(SUITES), choices=list(SUITES),
                    help="which groups of cases to run (default: all)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--work", default=None, help="work folder (default: a new temporary one)")
    ap.add_argument("--serve-session", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_session:
        serve_session(args.serve_session)
        return
    name = args.name or ("bad_inputs_quick" if args.quick else "bad_inputs")
    if not args.out:
        refuse_to_overwrite(name, args.overwrite)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="emomm_bad_inputs_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.fork:   # this process's HOME is watched too: a fresh one
        (work / "harness_home").mkdir(exist_ok=True)
        os.environ["HOME"] = str(work / "harness_home")
    load_before = os.getloadavg()
    bench = Bench(work, args.quick, args.fork)
    start = time.time()
    try:
        bench.setup()
        for suite in (getattr(bench, SUITES[name]) for name in args.suites):
            try:
                suite()
            except Exception:  # noqa: BLE001 - a broken suite is reported, the others still run
                bench.notes.append(f"suite {suite.__name__} stopped: {traceback.format_exc()[-1500:]}")
                bench.log(bench.notes[-1])
    finally:
        if not args.keep:
            make_writable(work)
            shutil.rmtree(work, ignore_errors=True)
    payload = {"command": "python -m benchmarks.bad_inputs " + " ".join(sys.argv[1:]),
               "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                            text=True).stdout.strip(),
               "mode": "fork" if args.fork else "exec", "quick": args.quick, "suites": args.suites,
               "wall_time_s": round(time.time() - start, 1),
               "load_average": {"before": [round(x, 2) for x in load_before],
                                "after": [round(x, 2) for x in os.getloadavg()]},
               **bench.totals()}
    if args.out:
        from benchmarks.common import machine
        out = Path(args.out)
        out.write_text(json.dumps({"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
                                   **payload}, indent=2) + "\n")
        print(f"wrote {out}")
    else:
        write_result(name, payload)
    t = payload["totals"]
    print(f"\n{t['runs']} runs of {t['inputs']} inputs: ok {t['ok']}, clear errors {t['clear_error']}, "
          f"crashes {t['crash']}, silent wrong {t['silent_wrong']}, wrote where nothing should "
          f"{t['wrote_files_where_nothing_should']}, unclear messages {t['unclear_messages']}")


if __name__ == "__main__":
    main()
