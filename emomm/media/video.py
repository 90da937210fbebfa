"""Video decoding: frames sampled by count or by rate, and the audio track, from any container.

Backends: PyAV (default) and OpenCV. Both decode MP4 (H.264, MPEG-4), AVI (MPEG-4, MJPEG),
MKV (H.264, FFV1), WebM (VP8, VP9) and FLV (Sorenson, VP6: CREMA-D) here, since both wrap
FFmpeg; PyAV is the default because it also reads the audio track, gives exact frame
timestamps, and needs no guess of the frame count. ``backend="auto"`` falls back to
OpenCV when PyAV fails on a file.

Sampling (:class:`FrameSampling`), in decoded-frame order:

* ``num_frames=N``: N frames spread uniformly over the clip (the middle frame of each of N
  equal segments, ``floor((i + 0.5) * n / N)``); a clip shorter than N gives all its frames;
* ``step=k``: every k-th frame (0, k, 2k, ...);
* ``fps=f``: the first frame of every ``1/f`` second interval (by timestamp);
* ``max_frames`` caps the count of the rate modes (kept uniformly over the clip).

Frames come back as RGB uint8 ``[T, H, W, 3]`` with their decoded indices and times.
"""
from __future__ import annotations

import logging
import os
import uuid
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from emomm.media.images import check_pixels

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".avi", ".mkv", ".flv", ".webm", ".mov", ".mpg", ".mpeg")
BACKENDS = ("pyav", "opencv", "auto")


class VideoReadError(ValueError):
    """A video that cannot be decoded; the message names the file and the fix."""


def _fail(path, why: str) -> VideoReadError:
    return VideoReadError(f"{path}: cannot decode video ({why}). Re-download or re-encode it "
                          "(e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`), or delete it.")


@dataclass(frozen=True)
class FrameSampling:
    """Which decoded frames to keep (exactly one of ``num_frames``, ``step``, ``fps``)."""
    num_frames: int | None = None
    step: int | None = None
    fps: float | None = None
    max_frames: int | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("num_frames", "step", "fps") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"frame sampling takes one of num_frames / step / fps, got {given}")
        for k in ("num_frames", "step", "max_frames"):
            v = getattr(self, k)
            if v is not None and int(v) < 1:
                raise ValueError(f"frame sampling {k}={v} must be >= 1")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"frame sampling fps={self.fps} must be > 0")

    @property
    def mode(self) -> str:
        return "count" if self.num_frames else "step" if self.step else "fps" if self.fps else "all"

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | "FrameSampling" | None) -> "FrameSampling":
        if isinstance(cfg, FrameSampling):
            return cfg
        cfg = dict(cfg or {})
        unknown = set(cfg) - {"num_frames", "step", "fps", "max_frames"}
        if unknown:
            raise ValueError(f"unknown frame sampling options {sorted(unknown)}; use num_frames, "
                             "step, fps, max_frames")
        return cls(**{k: v for k, v in cfg.items() if v is not None})


def uniform_indices(n: int, k: int) -> np.ndarray:
    """``k`` indices spread uniformly over ``range(n)`` (all of them when ``n <= k``)."""
    if n <= k:
        return np.arange(n)
    return np.minimum(np.floor((np.arange(k) + 0.5) * n / k).astype(np.int64), n - 1)


def _select_by_time(times: np.ndarray, fps: float) -> np.ndarray:
    buckets = np.floor((times - (times[0] if len(times) else 0.0)) * fps + 1e-6).astype(np.int64)
    keep = np.ones(len(times), bool)
    keep[1:] = buckets[1:] != buckets[:-1]
    return np.flatnonzero(keep)


def select_indices(sampling: FrameSampling, n: int, times: np.ndarray | None = None) -> np.ndarray:
    """Indices of the frames ``sampling`` keeps from a clip of ``n`` frames (with times)."""
    if n == 0:
        return np.zeros(0, np.int64)
    if sampling.num_frames:
        return uniform_indices(n, sampling.num_frames)
    if sampling.step:
        idx = np.arange(0, n, sampling.step)
    elif sampling.fps:
        if times is None:
            raise ValueError("fps sampling needs frame times")
        idx = _select_by_time(np.asarray(times, float), sampling.fps)
    else:
        idx = np.arange(n)
    if sampling.max_frames and len(idx) > sampling.max_frames:
        idx = idx[uniform_indices(len(idx), sampling.max_frames)]
    return idx


@dataclass
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float | None
    num_frames: int | None        # from the container header; None when it does not say
    duration: float | None        # seconds
    video_codec: str
    audio_codec: str | None = None
    audio_rate: int | None = None


@dataclass
class Frames:
    frames: np.ndarray            # [T, H, W, 3] uint8 RGB
    indices: np.ndarray           # decoded frame number of each
    times: np.ndarray             # seconds
    num_decoded: int              # frames in the whole clip
    info: VideoInfo
    backend: str = "pyav"
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)


# -- PyAV ---------------------------------------------------------------------------------
def _open_av(path: Path):
    import av

    if not path.is_file():
        raise VideoReadError(f"{path}: no such file")
    try:
        return av.open(str(path))
    except Exception as err:  # FFmpeg errors of many kinds
        raise _fail(path, f"{type(err).__name__}: {err}") from None


def _info_av(container, path: Path) -> VideoInfo:
    if not container.streams.video:
        raise VideoReadError(f"{path}: the file has no video track (streams: "
                             f"{[s.type for s in container.streams]}); use it as audio instead.")
    vs = container.streams.video[0]
    rate = vs.average_rate or vs.guessed_rate or vs.base_rate
    dur = None
    if vs.duration is not None and vs.time_base is not None:
        dur = float(vs.duration * vs.time_base)
    elif container.duration is not None:
        dur = container.duration / 1_000_000
    aus = container.streams.audio[0] if container.streams.audio else None
    return VideoInfo(str(path), int(vs.codec_context.width), int(vs.codec_context.height),
                     float(rate) if rate else None, int(vs.frames) or None, dur, vs.codec_context.name,
                     aus.codec_context.name if aus is not None else None,
                     int(aus.rate) if aus is not None else None)


def _iter_av(container, path: Path) -> Iterator[tuple[Any, float]]:
    vs = container.streams.video[0]
    vs.thread_type = "AUTO"
    rate = vs.average_rate or vs.guessed_rate
    n = 0
    try:
        for frame in container.decode(vs):
            t = float(frame.time) if frame.time is not None else (n / float(rate) if rate else float(n))
            yield frame, t
            n += 1
    except Exception as err:
        if n == 0:
            raise _fail(path, f"{type(err).__name__}: {err}") from None
        log.warning("%s: video decoding stopped after %d frames (%s); using them", path, n, err)


def _check_frame(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    """A frame size above ``max_pixels`` (default the images' ``MAX_PIXELS``) is refused."""
    check_pixels(path, width, height, max_pixels, what="video frame", error=VideoReadError)


def _read_av(path: Path, sampling: FrameSampling, max_pixels: int | None = None) -> Frames:
    with _open_av(path) as c:
        info = _info_av(c, path)
    _check_frame(path, info.width, info.height, max_pixels)   # from the header, before decoding
    need_count = sampling.mode in ("count",) or sampling.max_frames
    need_times = sampling.mode == "fps"
    if need_count or need_times:
        # Pass 1: decode without converting, for the true frame count and the timestamps
        # (headers omit or misstate the count: FLV has none, VFR files vary).
        with _open_av(path) as c:
            times = np.array([t for _, t in _iter_av(c, path)])
        wanted = select_indices(sampling, len(times), times)
    else:
        times, wanted = None, None
    wanted_set = set(wanted.tolist()) if wanted is not None else None
    frames, indices, ftimes = [], [], []
    n = 0
    with _open_av(path) as c:
        for i, (frame, t) in enumerate(_iter_av(c, path)):
            n = i + 1
            if wanted_set is not None:
                if i not in wanted_set:
                    continue
            elif sampling.step and i % sampling.step:
                continue
            _check_frame(path, frame.width, frame.height, max_pixels)   # a stream may change size
            frames.append(frame.to_ndarray(format="rgb24"))
            indices.append(i)
            ftimes.append(t)
    if not frames:
        raise _fail(path, "no video frames decoded")
    return Frames(np.stack(frames), np.asarray(indices), np.asarray(ftimes, np.float64),
                  n, info, "pyav")


# -- OpenCV -------------------------------------------------------------------------------
def _read_cv(path: Path, sampling: FrameSampling, max_pixels: int | None = None) -> Frames:
    import cv2

    if not path.is_file():
        raise VideoReadError(f"{path}: no such file")

    def _open():
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise _fail(path, "OpenCV could not open it")
        return cap

    cap = _open()
    fps = cap.get(cv2.CAP_PROP_FPS) or None
    header_n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    info = VideoInfo(str(path), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                     fps, header_n, header_n / fps if header_n and fps else None, "opencv")
    _check_frame(path, info.width, info.height, max_pixels)
    times = []
    if sampling.mode in ("count", "fps") or sampling.max_frames:
        while cap.grab():   # grab() decodes but skips the colour conversion
            times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
        cap.release()
        cap = _open()
        wanted = set(select_indices(sampling, len(times), np.asarray(times)).tolist())
    else:
        wanted = None
    frames, indices, ftimes = [], [], []
    i = 0
    while cap.grab():
        keep = (i in wanted) if wanted is not None else not (sampling.step and i % sampling.step)
        if keep:
            ok, bgr = cap.retrieve()
            if ok:
                _check_frame(path, bgr.shape[1], bgr.shape[0], max_pixels)
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                indices.append(i)
                ftimes.append(times[i] if i < len(times) else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
        i += 1
    cap.release()
    if not frames:
        raise _fail(path, "OpenCV decoded no frames")
    return Frames(np.stack(frames), np.asarray(indices), np.asarray(ftimes, np.float64), i, info, "opencv")


def read_frames(path: str | Path, num_frames: int | None = None, step: int | None = None,
                fps: float | None = None, max_frames: int | None = None,
                sampling: FrameSampling | dict | None = None, backend: str = "pyav",
                max_pixels: int | None = None) -> Frames:
    """Decode the frames of ``path`` that the sampling keeps (see the module docstring).

    Raises :class:`VideoReadError` (a ``ValueError``) naming the file when it is missing,
    has no video track, cannot be decoded, or has frames of more than ``max_pixels``
    pixels (default :data:`emomm.media.images.MAX_PIXELS`; checked from the header first).
    """
    if sampling is None:
        sampling = FrameSampling(num_frames, step, fps, max_frames)
    else:
        sampling = FrameSampling.from_config(sampling)
    path = Path(path)
    if backend == "pyav":
        return _read_av(path, sampling, max_pixels)
    if backend == "opencv":
        return _read_cv(path, sampling, max_pixels)
    if backend == "auto":
        try:
            return _read_av(path, sampling, max_pixels)
        except VideoReadError as err:
            if any(s in str(err) for s in ("no such file", "no video track", "max_pixels")):
                raise
            log.warning("%s; trying OpenCV", err)
            return _read_cv(path, sampling, max_pixels)
    raise ValueError(f"video backend {backend!r} is not one of {list(BACKENDS)}")


def probe(path: str | Path) -> VideoInfo:
    """Container and stream facts from the header (no decoding)."""
    path = Path(path)
    with _open_av(path) as c:
        return _info_av(c, path)


def read_audio(path: str | Path, sample_rate: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """The audio track of a video file as a float32 waveform (``[T]`` mono or ``[C, T]``).

    Delegates to :func:`emomm.media.audio.load_audio`, which decodes containers with PyAV.
    """
    from emomm.media.audio import load_audio

    return load_audio(path, sample_rate=sample_rate, mono=mono)


# -- writing (synthetic data, tests) ------------------------------------------------------
#: Container -> video codecs to try, best first (all present in PyAV's bundled FFmpeg here).
WRITE_CODECS = {
    ".mp4": ("libx264", "mpeg4"), ".m4v": ("libx264", "mpeg4"), ".mov": ("libx264", "mpeg4"),
    ".mkv": ("libx264", "ffv1", "mpeg4"), ".avi": ("mpeg4", "mjpeg"),
    ".webm": ("libvpx", "libvpx-vp9"), ".flv": ("flv",),
}


def write_video(path: str | Path, frames: np.ndarray | Sequence[np.ndarray], fps: float = 25.0,
                codec: str | None = None, quality: int = 18, audio: np.ndarray | None = None,
                audio_rate: int = 16000) -> Path:
    """Encode RGB (or gray) uint8 frames ``[T, H, W(, 3)]`` into ``path`` with PyAV.

    The codec defaults to the first of :data:`WRITE_CODECS` for the suffix; odd sizes are
    padded to even ones where the codec needs it. ``audio`` (float mono in [-1, 1]) adds an
    audio track. The file is written under a temporary name and renamed, so a reader never
    sees half a file.
    """
    import av

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"write_video takes uint8 frames [T, H, W, 3] or [T, H, W], got {frames.dtype} {frames.shape}")
    suffix = path.suffix.lower()
    codecs = (codec,) if codec else WRITE_CODECS.get(suffix)
    if not codecs:
        raise ValueError(f"{path}: no known video codec for {suffix!r}; pass codec=")
    codec = next((c for c in codecs if c in av.codecs_available), None)
    if codec is None:
        raise ValueError(f"{path}: none of the codecs {codecs} is available in this FFmpeg build")
    h, w = frames.shape[1:3]
    if codec not in ("ffv1", "mjpeg", "png") and (h % 2 or w % 2):
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        h, w = frames.shape[1:3]
    tmp = _tmp_name(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(tmp), "w", format=_FORMATS.get(suffix)) as c:
        vs = _video_stream(c, codec, rate, w, h, quality)
        astream = None
        if audio is not None:
            acodec = {".webm": "libopus", ".flv": "libmp3lame", ".avi": "libmp3lame"}.get(suffix, "aac")
            # Opus runs at 48 kHz; FLV stores MP3 only at 11.025 / 22.05 / 44.1 kHz.
            arate = 48000 if acodec == "libopus" else 44100 if suffix == ".flv" else audio_rate
            astream = c.add_stream(acodec, rate=arate)
            astream.layout = "mono"
        vs.codec_context.time_base = Fraction(1, 1) / rate
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts, vf.time_base = i, vs.codec_context.time_base
            for pkt in vs.encode(vf):
                c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
        if astream is not None:
            _encode_audio(c, astream, np.asarray(audio, np.float32), audio_rate)
    tmp.replace(path)
    return path


def _tmp_name(path: Path) -> Path:
    """A hidden name beside ``path`` to write under, then rename (no reader sees half a file)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def _video_stream(container, codec: str, rate: Fraction, width: int, height: int, quality: int):
    """A video stream of ``codec`` with emomm's settings per codec (CRF for x264 / VPx)."""
    vs = container.add_stream(codec, rate=rate)
    vs.width, vs.height = width, height
    vs.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    if codec == "libx264":
        vs.options = {"crf": str(quality), "preset": "veryfast"}
    elif codec in ("libvpx", "libvpx-vp9"):
        vs.options = {"crf": str(max(4, quality)), "b": "0"} if codec == "libvpx-vp9" else \
            {"crf": str(max(4, quality)), "b": "2M"}
    elif codec in ("mpeg4", "flv", "mjpeg"):
        vs.options = {"qscale": "3"}
        vs.codec_context.qmax = 4 if codec != "mjpeg" else 31
    return vs


class VideoWriter:
    """An MP4 written frame by frame (``write(rgb)``) with ``audio`` muxed in at ``close()``:
    H.264 (libx264, plays in browsers) where this FFmpeg build
    has it, else MPEG-4 Part 2 with a ``note`` saying why; audio (float mono in [-1, 1],
    any rate) as AAC. The size comes from the first frame (odd sizes padded to even ones).
    Written under a temporary name and renamed on a clean ``close``; ``abort()`` (or an
    exception inside ``with``) removes it.

    Attributes: ``codec`` (the video codec used), ``note`` (None, or why not H.264),
    ``frames`` (written so far)."""

    def __init__(self, path: str | Path, fps: float, audio: np.ndarray | None = None,
                 audio_rate: int | None = None, quality: int = 20) -> None:
        import av

        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
            raise ValueError(f"{self.path}: annotated videos are written as .mp4 (or .m4v / .mov); "
                             "give a path ending in .mp4")
        self.codec = next(c for c in WRITE_CODECS[".mp4"] if c in av.codecs_available or c == "mpeg4")
        self.note = None if self.codec == "libx264" else \
            "H.264 encoder (libx264) absent from this FFmpeg build: wrote MPEG-4 Part 2, which browsers do not play"
        self.rate, self.quality, self.frames = Fraction(fps).limit_denominator(1001), int(quality), 0
        self._tmp = _tmp_name(self.path)
        has_audio = audio is not None and bool(audio_rate) and np.asarray(audio).size > 0
        self.audio = np.asarray(audio, np.float32).reshape(-1) if has_audio else None
        self.audio_rate = int(audio_rate) if has_audio else None
        self._c = self._vs = self._as = None
        self._size: tuple[int, int] | None = None

    def write(self, rgb: np.ndarray) -> None:
        """One RGB uint8 frame ``[H, W, 3]`` (every frame of one size)."""
        import av

        rgb = np.asarray(rgb)
        h, w = rgb.shape[:2]
        if self._c is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._size = (w, h)
            self._c = av.open(str(self._tmp), "w", format="mp4")
            self._vs = _video_stream(self._c, self.codec, self.rate, w + w % 2, h + h % 2, self.quality)
            self._vs.codec_context.time_base = Fraction(1, 1) / self.rate
            if self.audio is not None:   # every stream before the first packet (the MP4 header)
                self._as = self._c.add_stream("aac", rate=self.audio_rate)
                self._as.layout = "mono"
        elif (w, h) != self._size:
            raise ValueError(f"{self.path}: frame {self.frames} is {w}x{h}, the video is {self._size[0]}x{self._size[1]}")
        if h % 2 or w % 2:
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        vf.pts, vf.time_base = self.frames, self._vs.codec_context.time_base
        for pkt in self._vs.encode(vf):
            self._c.mux(pkt)
        self.frames += 1

    def close(self) -> Path | None:
        """Flush, mux the audio (cut to the video's length) and rename into place; None when
        no frame was written (nothing is left on disk)."""
        if self._c is None:
            return None
        try:
            for pkt in self._vs.encode():
                self._c.mux(pkt)
            if self._as is not None:
                n = int(round(self.frames / float(self.rate) * self.audio_rate))
                _encode_audio(self._c, self._as, self.audio[:n], self.audio_rate)
            self._c.close()
        except BaseException:
            self.abort()
            raise
        self._c = None
        self._tmp.replace(self.path)
        return self.path

    def abort(self) -> None:
        if self._c is not None:
            try:
                self._c.close()
            except Exception:   # already broken: only the temporary file matters now
                pass
            self._c = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is not None:
            self.abort()


def source_audio(path: str | Path) -> tuple[np.ndarray | None, int | None, str | None]:
    """``(mono wave, rate, None)`` of a media file's audio track at its own rate, or
    ``(None, None, why)`` when it has none or it cannot be decoded (an annotated video is
    then written without sound)."""
    try:
        wave, sr = read_audio(path, sample_rate=None, mono=True)
    except ValueError as err:
        return None, None, str(err)
    return np.asarray(wave, np.float32).reshape(-1), int(sr), None


def iter_frames(path: str | Path, max_pixels: int | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Every frame of ``path`` in order as ``(seconds, RGB uint8 [H, W, 3])`` (PyAV), without
    holding the clip in memory; frames of more than ``max_pixels`` pixels are refused."""
    path = Path(path)
    with _open_av(path) as c:
        info = _info_av(c, path)
        _check_frame(path, info.width, info.height, max_pixels)
        for frame, t in _iter_av(c, path):
            yield t, frame.to_ndarray(format="rgb24")


def frames_at(path: str | Path, times: Sequence[float], max_pixels: int | None = None) -> dict[float, np.ndarray]:
    """``{t: RGB frame}``: for each of ``times`` (seconds) the frame nearest to it, decoding
    no further than the last one needs."""
    want = sorted(float(t) for t in times)
    best: dict[float, tuple[float, np.ndarray]] = {}
    for ft, rgb in iter_frames(path, max_pixels):
        for t in want:
            if t not in best or abs(ft - t) < best[t][0]:
                best[t] = (abs(ft - t), rgb)
        if want and ft > want[-1]:
            break
    return {t: rgb for t, (_, rgb) in best.items()}


_FORMATS = {".mkv": "matroska", ".webm": "webm", ".flv": "flv", ".avi": "avi", ".mp4": "mp4",
            ".m4v": "mp4", ".mov": "mov"}


def _encode_audio(container, stream, wave: np.ndarray, rate: int) -> None:
    import av

    target = stream.codec_context.sample_rate
    if target != rate:
        from emomm.media.audio import resample
        wave = resample(wave, rate, target)
    fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
    resampler = av.AudioResampler(format=fmt, layout="mono", rate=target)
    block = 1024
    pts = 0
    for start in range(0, len(wave), block):
        chunk = np.ascontiguousarray(wave[None, start: start + block], dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate = target
        frame.pts = pts
        pts += chunk.shape[1]
        for rf in resampler.resample(frame):
            for pkt in stream.encode(rf):
                container.mux(pkt)
    for rf in resampler.resample(None):
        for pkt in stream.encode(rf):
            container.mux(pkt)
    for pkt in stream.encode():
        container.mux(pkt)
