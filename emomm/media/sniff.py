"""What a file or an upload is, from its first bytes (never from its name or declared type).

:func:`sniff` recognises the still-image, audio and container formats the decoders read:
JPEG, PNG, WebP, GIF, BMP; RIFF/WAVE, FLAC, OGG, MP3 (ID3 tag or MPEG frame sync);
MP4/MOV (``ftyp``), WebM/Matroska (EBML), FLV and AVI. The result names a *kind*
(``image``, ``audio`` or ``video``; containers that may hold either are ``video`` with
``audio_ok=True``) so the web app can refuse a JPEG sent to the audio endpoint before any
decoder sees it, and ``python -m emomm.predict`` picks the decoder of a file
(:func:`emomm.inference.batch.media_kind`). Each signature is checked beyond its first
bytes where text could start alike (BMP's header size, MP3's frame header, GIF's version).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sniffed:
    format: str          # short name: jpeg, png, wav, mp4, webm...
    kind: str            # image | audio | video
    mime: str
    audio_ok: bool = False   # a container whose audio track can feed the voice modality

    def accepts(self, endpoint: str) -> bool:
        """Whether this format fits the ``image`` / ``audio`` / ``video`` endpoint."""
        if endpoint == "audio":
            return self.kind == "audio" or self.audio_ok
        return self.kind == endpoint


def _mp3_frame_sync(head: bytes) -> bool:
    # An MPEG audio frame header: 11 set sync bits, a valid version, layer III/II and a
    # bitrate index that is neither "free" (0) nor "bad" (15).
    if len(head) < 4 or head[0] != 0xFF or (head[1] & 0xE0) != 0xE0:
        return False
    version, layer, bitrate = (head[1] >> 3) & 3, (head[1] >> 1) & 3, head[2] >> 4
    return version != 1 and layer != 0 and bitrate not in (0, 15)


def sniff(data: bytes) -> Sniffed | None:
    """The format of ``data`` from its magic bytes, or None when it is none of the known."""
    h = data[:64]
    if h.startswith(b"\xff\xd8\xff"):
        return Sniffed("jpeg", "image", "image/jpeg")
    if h.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("png", "image", "image/png")
    if h[:4] == b"RIFF" and h[8:12] == b"WEBP":
        return Sniffed("webp", "image", "image/webp")
    if h[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("gif", "image", "image/gif")
    if h[:2] == b"BM" and len(h) >= 26 and int.from_bytes(h[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):
        return Sniffed("bmp", "image", "image/bmp")   # the DIB header size rules out text starting "BM"
    if h[:4] == b"RIFF" and h[8:12] == b"WAVE":
        return Sniffed("wav", "audio", "audio/wav")
    if h[:4] == b"RIFF" and h[8:12] == b"AVI ":
        return Sniffed("avi", "video", "video/x-msvideo", audio_ok=True)
    if h[:4] == b"fLaC":
        return Sniffed("flac", "audio", "audio/flac")
    if h[:4] == b"OggS":
        return Sniffed("ogg", "audio", "audio/ogg")
    if h[:3] == b"ID3" or _mp3_frame_sync(h):
        return Sniffed("mp3", "audio", "audio/mpeg")
    if h[4:8] == b"ftyp":
        brand = h[8:12]
        if brand in (b"M4A ", b"M4B "):
            return Sniffed("m4a", "audio", "audio/mp4")
        if brand == b"qt  ":
            return Sniffed("mov", "video", "video/quicktime", audio_ok=True)
        return Sniffed("mp4", "video", "video/mp4", audio_ok=True)
    if h[:4] == b"\x1a\x45\xdf\xa3":
        # EBML: the DocType says webm or matroska; browsers' MediaRecorder writes webm, which
        # may hold audio only, so it is accepted by the audio endpoint too.
        fmt = "webm" if b"webm" in data[:256] else "mkv"
        return Sniffed(fmt, "video", f"video/{'webm' if fmt == 'webm' else 'x-matroska'}", audio_ok=True)
    if h[:3] == b"FLV" and len(h) > 4 and h[3] == 1:
        return Sniffed("flv", "video", "video/x-flv", audio_ok=True)
    return None


#: File suffix the decoders expect for each format (when one needs a path).
SUFFIX = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "gif": ".gif", "bmp": ".bmp", "wav": ".wav",
          "avi": ".avi", "flac": ".flac", "ogg": ".ogg", "mp3": ".mp3", "m4a": ".m4a", "mov": ".mov",
          "mp4": ".mp4", "webm": ".webm", "mkv": ".mkv", "flv": ".flv"}
