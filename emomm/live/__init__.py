"""Live emotion recognition: camera/file/RTSP frames -> fast face detection every N frames ->
tracking with stable face IDs -> classification -> per-face smoothing -> overlay, with voice
from a microphone or a file gated by voice activity detection (``python -m emomm.live``)."""
from emomm.live.stream import FrameResult, LivePipeline

__all__ = ["LivePipeline", "FrameResult"]
