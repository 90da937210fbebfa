"""Uploaded bytes to arrays, in memory.

Images are decoded by PIL from a ``BytesIO`` (EXIF orientation applied, like
:func:`emomm.media.images.read_image_rgb`); audio by soundfile from a ``BytesIO`` (WAV, FLAC,
OGG, MP3) or by PyAV from one (the audio track of MP4 / WebM / FLV / AVI: a browser's
MediaRecorder writes WebM). Video goes to the predictor through a path (the frame sampler
and face-crop pipeline read files), so :func:`video_path` writes it to a private temporary
file that is deleted as soon as the prediction returns.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from typing import Iterator

import numpy as np

from emomm.media.images import ImageReadError, ImageTooLargeError, decode_image
from emomm.serve.errors import TEMP_PREFIX, BadInput
from emomm.media.sniff import SUFFIX, Sniffed


def _unreadable(what: str, name: str, err: Exception) -> BadInput:
    return BadInput(422, "unreadable", f"{name}: the {what} cannot be decoded ({type(err).__name__}: "
                    f"{err}); re-export it as a standard file (JPEG/PNG image, WAV/MP3 audio, MP4 video)")


def image_rgb(data: bytes, name: str = "upload") -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` from encoded image bytes, decoded as every image is
    (:func:`emomm.media.images.decode_image`: the header's size checked against
    ``MAX_PIXELS`` before decoding, 16-bit scaled, EXIF orientation applied)."""
    try:
        return decode_image(io.BytesIO(data), "RGB", name=name)
    except ImageTooLargeError as err:
        raise BadInput(413, "too_many_pixels", str(err)) from None
    except ImageReadError as err:
        raise BadInput(422, "unreadable", f"{err}; send a standard JPEG or PNG image") from None


def audio_wave(data: bytes, sniffed: Sniffed, name: str = "upload") -> tuple[np.ndarray, int]:
    """Mono float32 ``[T]`` and its sample rate from encoded audio (or a container's audio)."""
    wave = sr = None
    if sniffed.kind == "audio" and sniffed.format in ("wav", "flac", "ogg", "mp3"):
        import soundfile as sf
        try:
            arr, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)   # [T, C]
            wave = arr.mean(axis=1)
        except Exception:
            wave = None   # libsndfile rejects some MP3/OGG variants that FFmpeg reads
    if wave is None:
        wave, sr = _audio_av(data, name)
    if wave.size == 0:
        raise BadInput(422, "empty_audio", f"{name}: the file holds no audio samples; record again")
    if not np.isfinite(wave).all():
        raise BadInput(422, "unreadable", f"{name}: the audio has NaN or infinite samples")
    return np.ascontiguousarray(wave, dtype=np.float32), int(sr)


def _audio_av(data: bytes, name: str) -> tuple[np.ndarray, int]:
    import av
    try:
        with av.open(io.BytesIO(data)) as c:
            if not c.streams.audio:
                raise BadInput(422, "no_audio_track", f"{name}: the file has no audio track "
                               f"(streams: {[s.type for s in c.streams]}); upload it as a video instead")
            stream = c.streams.audio[0]
            resampler = av.AudioResampler(format="fltp")
            chunks, sr = [], None
            for frame in c.decode(stream):
                sr = sr or frame.sample_rate
                chunks += [f.to_ndarray() for f in resampler.resample(frame)]
            chunks += [f.to_ndarray() for f in resampler.resample(None)]
    except BadInput:
        raise
    except Exception as err:
        raise _unreadable("audio", name, err) from None
    if not chunks:
        return np.zeros(0, np.float32), int(sr or 16000)
    ch = max(x.shape[0] for x in chunks)
    wave = np.concatenate([x if x.shape[0] == ch else np.repeat(x[:1], ch, 0) for x in chunks], axis=1)
    return wave.mean(axis=0), int(sr)


@contextlib.contextmanager
def video_path(data: bytes, sniffed: Sniffed) -> Iterator[str]:
    """A private (0600) temporary file holding ``data``, removed on exit whatever happens."""
    fd, path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=SUFFIX.get(sniffed.format, ".bin"))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def pcm_f32(data: bytes) -> np.ndarray:
    """Little-endian float32 PCM (what the live page sends) as ``[T]``."""
    if len(data) % 4:
        raise BadInput(400, "bad_audio_chunk", "live audio chunks are float32 PCM (a multiple of 4 bytes)")
    wave = np.frombuffer(data, dtype="<f4").astype(np.float32)
    return np.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)
