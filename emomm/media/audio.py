"""Audio decoding, resampling and length handling (below datasets, faces and inference).

* :func:`load_audio` reads any sample rate from WAV / FLAC / OGG / MP3 (soundfile) and the
  audio track of video containers (MP4 / AVI / MKV / FLV / WebM / MOV, via PyAV), mixes
  stereo down to mono and resamples with ``torchaudio.functional.resample``. It never uses
  ``torchaudio.load``. Every failure is an :class:`AudioReadError` naming the file.
* A file whose header claims a sample rate outside :data:`SAMPLE_RATES` (a WAV "at 1 Hz")
  is refused before anything is resampled; :func:`check_wave` also refuses waveforms too
  short to hold a syllable (what the predictor asks of a recording).
* :func:`trim_silence` and :func:`crop_or_pad` fit a waveform to the model's clip length.

Datasets (:mod:`emomm.data.pipelines.waveforms`) and the predictor both decode through this module, so a
prediction reads a file exactly as training did.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

log = logging.getLogger(__name__)

#: Read with soundfile (libsndfile); other audio suffixes fall back to PyAV.
SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
#: Containers whose audio track is read with PyAV.
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".avi", ".mkv", ".flv", ".webm", ".mov", ".mpg", ".mpeg")
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS + (".m4a", ".aac", ".opus", ".wma")
MEDIA_EXTENSIONS = AUDIO_EXTENSIONS + VIDEO_EXTENSIONS
#: Sample rates audio is recorded at (Hz, inclusive): telephone 8 kHz down to 4 kHz, studio
#: up to 384 kHz. A header outside them is corrupt (resampling "1 Hz" to 16 kHz would
#: multiply the samples by 16000).
SAMPLE_RATES = (4000, 384000)
#: The shortest recording the predictor reads (seconds): below it there is no syllable.
MIN_SECONDS = 0.1


class AudioReadError(ValueError):
    """A media file whose audio cannot be read; the message names the file and the fix."""


def _fail(path: Path, why: str) -> AudioReadError:
    return AudioReadError(f"{path}: cannot read audio ({why}). Re-download or re-encode the file "
                          "(e.g. `ffmpeg -i IN -ac 1 OUT.wav`), or delete it.")


def check_sample_rate(sr: int | float, source: str | Path) -> None:
    """Raise :class:`AudioReadError` naming ``source`` when ``sr`` is not in :data:`SAMPLE_RATES`."""
    lo, hi = SAMPLE_RATES
    if not (lo <= sr <= hi):
        raise AudioReadError(f"{source}: the sample rate is {sr:g} Hz, outside the {lo}-{hi} Hz that audio is "
                             "recorded at (the header is wrong or this is not audio); re-encode it "
                             "(e.g. `ffmpeg -i IN -ar 16000 OUT.wav`) or delete it.")


def check_wave(wave: np.ndarray, sr: int, source: str | Path) -> None:
    """Raise :class:`AudioReadError` naming ``source`` for a sample rate outside
    :data:`SAMPLE_RATES` or a mono ``wave`` ``[T]`` shorter than :data:`MIN_SECONDS`."""
    check_sample_rate(sr, source)
    if len(wave) < MIN_SECONDS * sr:
        n = len(wave)
        raise AudioReadError(f"{source}: only {n} sample{'' if n == 1 else 's'} ({1000 * n / sr:.1f} ms) of audio; "
                             f"at least {MIN_SECONDS:g} s is needed to hear an emotion: record again, "
                             "or delete it.")


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # [T, C]
    return data.T, int(sr)


def _read_av(path: Path) -> tuple[np.ndarray, int]:
    """The first audio stream of any container PyAV (FFmpeg) can decode, as ``[C, T]``."""
    import av

    try:
        container = av.open(str(path))
    except Exception as err:  # PyAV raises a family of FFmpeg errors
        raise _fail(path, f"{type(err).__name__}: {err}") from None
    with container:
        if not container.streams.audio:
            raise AudioReadError(f"{path}: the file has no audio track (streams: "
                                 f"{[s.type for s in container.streams]}); a video-only file "
                                 "cannot feed the voice modality.")
        stream = container.streams.audio[0]
        # Convert every frame to planar float at the native rate and layout, so frames of
        # any codec (s16, fltp, s32p...) concatenate alike.
        resampler = av.AudioResampler(format="fltp")
        chunks, sr = [], None
        try:
            for frame in container.decode(stream):
                sr = sr or frame.sample_rate
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except Exception as err:
            if not chunks:
                raise _fail(path, f"{type(err).__name__}: {err}") from None
            log.warning("%s: audio decoding stopped early (%s); using the %d frames read",
                        path, err, len(chunks))
    if not chunks:
        raise AudioReadError(f"{path}: the audio track holds no samples; re-encode or delete it.")
    channels = max(c.shape[0] for c in chunks)
    data = np.concatenate([c if c.shape[0] == channels else np.repeat(c[:1], channels, 0)
                           for c in chunks], axis=1)
    return data.astype(np.float32, copy=False), int(sr or stream.rate)


def resample(wave: np.ndarray | torch.Tensor, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited (sinc) resampling along the last axis with torchaudio."""
    x = torch.as_tensor(np.ascontiguousarray(wave), dtype=torch.float32)
    if orig_sr == new_sr:
        return x.numpy()
    return AF.resample(x, int(orig_sr), int(new_sr)).numpy()


def load_audio(path: str | Path, sample_rate: int | None = None,
               mono: bool = True) -> tuple[np.ndarray, int]:
    """Read the audio of ``path``.

    Returns ``(wave, sr)``: float32 in [-1, 1] (nominally), ``[T]`` when ``mono`` (channels
    averaged) else ``[C, T]``; ``sr`` is ``sample_rate`` when given (resampled), else the
    file's own rate. Raises :class:`AudioReadError` (a ``ValueError``) naming the file for
    missing, corrupt, empty or track-less files and sample rates outside :data:`SAMPLE_RATES`.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        data, sr = _read_av(path)
    else:
        try:
            data, sr = _read_soundfile(path)
        except (sf.LibsndfileError, RuntimeError, TypeError) as err:
            if suffix in (".wav", ".flac", ".aif", ".aiff"):  # libsndfile is authoritative
                raise _fail(path, str(err).strip()) from None
            data, sr = _read_av(path)  # MP3/OGG variants libsndfile rejects, M4A, AAC...
    if data.size == 0 or data.shape[-1] == 0:
        raise AudioReadError(f"{path}: the file holds no audio samples (0 frames); "
                             "re-encode or delete it.")
    if not np.isfinite(data).all():
        raise _fail(path, "it contains NaN or infinite samples")
    check_sample_rate(sr, path)
    if mono:
        data = data.mean(axis=0)
    if sample_rate and sr != sample_rate:
        data = resample(data, sr, int(sample_rate))
        sr = int(sample_rate)
    return np.ascontiguousarray(data, dtype=np.float32), int(sr)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the header (cheap); raises :class:`AudioReadError`."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        try:
            info = sf.info(str(path))
            if info.frames <= 0:
                raise AudioReadError(f"{path}: the file holds no audio samples (0 frames)")
            check_sample_rate(info.samplerate, path)
            return info.frames / info.samplerate
        except (sf.LibsndfileError, RuntimeError) as err:
            if path.suffix.lower() in (".wav", ".flac", ".aif", ".aiff"):
                raise _fail(path, str(err).strip()) from None
    import av
    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise AudioReadError(f"{path}: the file has no audio track")
            s = c.streams.audio[0]
            if s.duration is not None and s.time_base is not None:
                return float(s.duration * s.time_base)
            return float(c.duration or 0) / 1e6
    except AudioReadError:
        raise
    except Exception as err:
        raise _fail(path, f"{type(err).__name__}: {err}") from None


# -- length handling -----------------------------------------------------------------------
def trim_silence(wave: np.ndarray, sr: int, top_db: float = 40.0, frame_ms: float = 25.0,
                 margin_s: float = 0.1) -> np.ndarray:
    """Cut leading and trailing stretches quieter than ``top_db`` below the loudest frame.

    Keeps ``margin_s`` of context on each side; a clip with no sound is returned as is.
    """
    hop = max(1, int(sr * frame_ms / 1000))
    n = len(wave) // hop
    if n < 2:
        return wave
    rms = np.sqrt(np.mean(wave[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
    db = 20 * np.log10(rms / rms.max())
    loud = np.flatnonzero(db > -float(top_db))
    if len(loud) == 0:
        return wave
    margin = int(margin_s * sr)
    start = max(0, loud[0] * hop - margin)
    stop = min(len(wave), (loud[-1] + 1) * hop + margin)
    return wave[start:stop]


def crop_or_pad(wave: np.ndarray, length: int, random: bool, rng: np.random.Generator | None = None,
                pad: bool = True) -> np.ndarray:
    """Crop to ``length`` samples (random offset when ``random``, else centred); pad with
    zeros at the end when shorter and ``pad`` (else return the shorter clip)."""
    n = len(wave)
    if n > length:
        extra = n - length
        start = int((rng or np.random.default_rng()).integers(0, extra + 1)) if random else extra // 2
        return wave[start:start + length]
    if n < length and pad:
        return np.pad(wave, (0, length - n))
    return wave
