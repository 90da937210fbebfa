"""Voice for the live pipeline: audio sources, voice activity detection, a sliding window.

* :class:`MicSource` - the default microphone through sounddevice (PortAudio), imported only
  when asked for, with a clear error when there is no PortAudio library or input device;
* :class:`FileAudioSource` - a WAV (any file emomm reads) played in simulated real time: the
  pipeline asks for the samples up to each video frame's timestamp;
* :class:`VoiceWindow` - the last ``window_s`` seconds at 16 kHz, silero-vad speech
  probabilities on 32 ms chunks (:class:`emomm.media.vad.SileroVad`, shared with the
  predictor; its model ships inside the silero-vad package), and ``speech`` when enough of
  the window is voiced.
"""
from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

import numpy as np

from emomm.media.audio import load_audio
from emomm.media.vad import VAD_CHUNK, VAD_RATE, SileroVad


class LiveInputError(RuntimeError):
    """A camera, microphone, file or output that live mode cannot open; the message names it
    and the fix (``python -m emomm.live`` prints it as one line and exits 1)."""


class FileAudioSource:
    """Samples of an audio file up to a given time (simulated real time)."""

    def __init__(self, path: str | Path, sample_rate: int = VAD_RATE) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"audio={path}: no such file (give a .wav, audio=mic or audio=none)")
        wave, _ = load_audio(path, sample_rate=sample_rate)
        self.path = path   # an annotated video muxes the file in at its own rate
        self.wave = np.asarray(wave, np.float32).reshape(-1)
        self.sample_rate, self.pos = sample_rate, 0

    def read_until(self, t: float) -> np.ndarray:
        end = min(len(self.wave), int(round(t * self.sample_rate)))
        out = self.wave[self.pos:end]
        self.pos = max(self.pos, end)
        return out

    def close(self) -> None:
        pass


class MicSource:
    """The default input device, mono, at ``sample_rate``; ``read_until`` returns what
    arrived since the last call (the time argument is ignored: the clock is real)."""

    def __init__(self, sample_rate: int = VAD_RATE, device: int | str | None = None) -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError) as e:
            raise LiveInputError(f"audio=mic needs sounddevice and the PortAudio library ({e}); install "
                               "libportaudio2 (apt) and `pip install 'emomm[live]'`, or use audio=file.wav "
                               "or audio=none") from e
        self.sample_rate = sample_rate
        self._chunks: deque[np.ndarray] = deque()
        self._lock = threading.Lock()

        def callback(indata, frames, time_info, status):
            with self._lock:
                self._chunks.append(indata[:, 0].copy())

        try:
            self.stream = sd.InputStream(samplerate=sample_rate, channels=1, dtype="float32",
                                         device=device, callback=callback)
            self.stream.start()
        except Exception as e:  # PortAudioError: no device, busy device...
            raise LiveInputError(f"audio=mic: cannot open an input device ({e}); check `python -m "
                               "sounddevice` lists one, or use audio=file.wav / audio=none") from e

    def read_until(self, t: float) -> np.ndarray:
        with self._lock:
            chunks, self._chunks = list(self._chunks), deque()
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)

    def close(self) -> None:
        self.stream.stop()
        self.stream.close()


def open_audio(spec: str | None, sample_rate: int = VAD_RATE):
    """``mic`` | a file path | ``none``/None."""
    if spec in (None, "", "none", "None", False):
        return None
    if str(spec) == "mic":
        return MicSource(sample_rate)
    return FileAudioSource(spec, sample_rate)


class VoiceWindow:
    """The last ``window_s`` seconds of audio and their voice activity.

    Args:
        window_s: sliding-window length (what the voice classifier sees).
        vad_threshold: silero-vad probability above which a 32 ms chunk is voiced.
        min_speech: fraction of the window's chunks that must be voiced for ``speech``.
        vad: a callable ``(chunk float32 [512]) -> probability``; default
            :class:`~emomm.media.vad.SileroVad` (ONNX), loaded at the first chunk.
    """

    def __init__(self, window_s: float = 2.0, vad_threshold: float = 0.5, min_speech: float = 0.2,
                 vad=None) -> None:
        self.size = int(window_s * VAD_RATE)
        self.buf = np.zeros(0, np.float32)
        self.pending = np.zeros(0, np.float32)
        self.vad_threshold, self.min_speech = float(vad_threshold), float(min_speech)
        self.flags: deque[bool] = deque(maxlen=max(1, self.size // VAD_CHUNK))
        self._vad = vad
        self.samples_seen = 0

    def _vad_prob(self, chunk: np.ndarray) -> float:
        if self._vad is None:
            self._vad = SileroVad()
        return float(self._vad(chunk))

    def push(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, np.float32).reshape(-1)
        self.samples_seen += len(samples)
        self.buf = np.concatenate([self.buf, samples])[-self.size:]
        self.pending = np.concatenate([self.pending, samples])
        while len(self.pending) >= VAD_CHUNK:
            chunk, self.pending = self.pending[:VAD_CHUNK], self.pending[VAD_CHUNK:]
            self.flags.append(self._vad_prob(chunk) >= self.vad_threshold)

    @property
    def speech(self) -> bool:
        return bool(self.flags) and float(np.mean(self.flags)) >= self.min_speech

    @property
    def wave(self) -> np.ndarray:
        return self.buf
