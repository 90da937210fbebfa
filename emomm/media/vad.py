"""Voice activity: is anyone speaking? (below live mode and the predictor)

A detector is a callable ``(chunk float32 [VAD_CHUNK] at VAD_RATE) -> speech probability``
with ``reset()`` (detectors may keep state from chunk to chunk, as in a stream):

* :class:`SileroVad` - silero-vad (its model ships inside the ``silero-vad`` package, the
  ``emomm[live]`` extra): speech against silence, noise, tones and music. Live mode's
  :class:`~emomm.live.voice_input.VoiceWindow` runs it on the microphone.
* :class:`EnergyVad` - 1.0 for a chunk louder than ``floor_db`` dBFS (RMS), else 0.0: finds
  digital silence and near-silence, needs nothing, never mistakes a sound for silence.

:func:`speech_seconds` runs one over a whole recording (what the predictor asks before it
gives an emotion); :func:`make_vad` builds one by name (``silero`` | ``energy`` | ``off``).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from emomm.media.audio import resample
from emomm.utils.ort import onnxruntime

VAD_RATE = 16000
VAD_CHUNK = 512        # silero-vad's chunk at 16 kHz (32 ms)
VAD_METHODS = ("energy", "silero", "off")
#: Below this loudness (dBFS, RMS of a 32 ms chunk) a chunk is silence for :class:`EnergyVad`;
#: speech is -40 to -10, but softly spoken sad or calm takes of RAVDESS peak at -50 to -55 (at
#: -50, 11 of its 1,200 clips, all calm, sad or fearful, were refused as silent); a quiet room
#: through a laptop microphone is about -60.
SILENCE_DB = -60.0
#: Speech probability above which a chunk is voiced (silero-vad's own default).
VAD_THRESHOLD = 0.5
#: Voiced seconds a recording needs to count as speech (two 32 ms chunks).
MIN_SPEECH_S = 0.05


class Vad(Protocol):
    name: str

    def __call__(self, chunk: np.ndarray) -> float: ...

    def reset(self) -> None: ...


class SileroVad:
    """silero-vad (ONNX) on 32 ms chunks at 16 kHz; stateful from chunk to chunk."""

    name = "silero"

    def __init__(self) -> None:
        threads = torch.get_num_threads()
        try:
            from silero_vad import load_silero_vad   # an optional extra
        except ImportError as err:
            raise RuntimeError(f"the silero-vad speech detector is not installed ({err}): "
                               "`pip install 'emomm[live]'`, or use vad=energy (silence only)") from None
        finally:
            torch.set_num_threads(threads)   # importing silero_vad sets torch to 1 thread
        onnxruntime()   # silero's session imports it: with its telemetry off first
        self.model = load_silero_vad(onnx=True)

    def __call__(self, chunk: np.ndarray) -> float:
        return float(self.model(torch.from_numpy(np.ascontiguousarray(chunk, np.float32)), VAD_RATE))

    def reset(self) -> None:
        self.model.reset_states()


class EnergyVad:
    """1.0 for a chunk whose RMS is above ``floor_db`` dBFS, else 0.0 (stateless)."""

    name = "energy"

    def __init__(self, floor_db: float = SILENCE_DB) -> None:
        self.floor_db = float(floor_db)

    def __call__(self, chunk: np.ndarray) -> float:
        return float(level_db(chunk) > self.floor_db)

    def reset(self) -> None:
        pass


def level_db(x: np.ndarray) -> float:
    """RMS level of ``x`` in dBFS (-inf for digital silence or no samples)."""
    x = np.asarray(x, np.float64)
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def loudest_db(wave: np.ndarray, size: int) -> float:
    """The highest :func:`level_db` over consecutive ``size``-sample chunks of ``wave`` ``[T]``
    (the whole wave when it is shorter than one chunk)."""
    w = np.asarray(wave, np.float64)
    n = len(w) // size
    if n == 0:
        return level_db(w)
    ms = np.mean(w[:n * size].reshape(n, size) ** 2, axis=1)
    top = float(np.sqrt(ms.max()))
    return 20.0 * np.log10(top) if top > 0 else float("-inf")


def make_vad(method: str | Vad | None) -> Vad | None:
    """``energy`` | ``silero`` | ``off``/None (no check) or a detector as it is."""
    if method in (None, False, "off", "none"):
        return None
    if not isinstance(method, str):
        return method
    if method == "energy":
        return EnergyVad()
    if method == "silero":
        return SileroVad()
    raise ValueError(f"vad={method!r}: use one of {list(VAD_METHODS)}")


def speech_seconds(wave: np.ndarray, sr: int, vad: Vad, threshold: float = VAD_THRESHOLD,
                   enough: float | None = None) -> float:
    """Seconds of 32 ms chunks of mono ``wave`` ``[T]`` (at ``sr``, resampled to 16 kHz)
    that ``vad`` calls voiced; stops counting once ``enough`` seconds are found."""
    w = resample(np.asarray(wave, np.float32), int(sr), VAD_RATE) if int(sr) != VAD_RATE else \
        np.asarray(wave, np.float32)
    vad.reset()
    step = VAD_CHUNK / VAD_RATE
    voiced = 0.0
    for i in range(len(w) // VAD_CHUNK):
        if vad(w[i * VAD_CHUNK:(i + 1) * VAD_CHUNK]) >= threshold:
            voiced += step
            if enough is not None and voiced >= enough:
                break
    return voiced


def no_speech(wave: np.ndarray, sr: int, vad: Vad | None, min_speech_s: float = MIN_SPEECH_S) -> str | None:
    """None when ``wave`` holds at least ``min_speech_s`` of speech (or ``vad`` is None),
    else the note that says why there is none."""
    if vad is None or speech_seconds(wave, sr, vad, enough=min_speech_s) >= min_speech_s - 1e-9:
        return None
    loud = loudest_db(wave, max(1, int(sr * VAD_CHUNK / VAD_RATE)))
    if loud <= SILENCE_DB:
        what = "digital silence" if loud == float("-inf") else f"its loudest 32 ms is at {loud:.0f} dBFS"
        return f"no speech detected: the recording is silent ({what}, below {SILENCE_DB:g} dBFS)"
    return (f"no speech detected (the {vad.name} voice activity detector found less than {min_speech_s:g} s "
            "of speech); vad=off (predict: predictor.vad=off) predicts anyway")
