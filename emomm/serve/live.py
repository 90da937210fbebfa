"""The live WebSocket: camera frames and microphone audio in, predictions out.

Protocol (``/ws/live``):

* client -> server, text: ``{"type": "hello", "sample_rate": 48000}`` (the microphone rate,
  a number of Hz from 4000 to 192000; it may be sent again to change it);
* client -> server, binary: one type byte then the payload: ``0x01`` + a JPEG frame,
  ``0x02`` + little-endian float32 mono PCM at the announced rate (frames need no hello;
  audio before a hello is refused, since its rate is unknown);
* server -> client: ``{"type": "ready", "labels", "modalities"}`` once, then one
  ``{"type": "frame", "seq", "faces", "voice", "fps", "dropped", "ms"}`` per processed frame,
  and ``{"type": "error", "code", "message"}`` for a bad message: anything malformed (not
  JSON, an unknown type, a sample rate that is missing, not a number, NaN, infinite or out of
  range, an empty or unknown binary message) is answered so and dropped, and the session
  carries on.

Flow control drops, never queues: the page sends a frame only once the answer to its
previous one has arrived, and on the server a receiver task keeps just the newest frame in
a one-slot mailbox (a frame that arrives while the model is busy replaces the waiting one and
counts as dropped). Audio goes into a ring buffer of the voice model's clip length; the
voice prediction is refreshed at most every ``AUDIO_HOP_S`` seconds of new audio.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from emomm.serve import decode
from emomm.serve.errors import BadInput, public

log = logging.getLogger(__name__)

FRAME, AUDIO = 1, 2
AUDIO_HOP_S = 0.5
MAX_FRAME_BYTES = 4_000_000
MIN_RATE, MAX_RATE = 4000, 192000
HELLO = '{"type": "hello", "sample_rate": 48000}'


def _show(value) -> str:
    """A client's value, short, for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def sample_rate(value) -> int:
    """A hello's ``sample_rate`` (Hz) as an int; :class:`BadInput` unless it is a finite number
    from ``MIN_RATE`` to ``MAX_RATE`` (a fraction is rounded)."""
    if value is None:
        raise BadInput(400, "bad_sample_rate", f"hello needs sample_rate, the microphone's rate in Hz: {HELLO}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(400, "bad_sample_rate", f"sample_rate={_show(value)} is not a number; send the "
                       f"microphone's rate in Hz: {HELLO}")
    if not MIN_RATE <= value <= MAX_RATE:   # False for NaN; no float() of a huge int either
        raise BadInput(400, "bad_sample_rate", f"sample_rate={_show(value)} is not a microphone rate; send "
                       f"one from {MIN_RATE} to {MAX_RATE} Hz: {HELLO}")
    return int(round(value))


class AudioRing:
    """The most recent ``seconds`` of mono audio, kept at its own sample rate."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.sr = float(seconds), 16000
        self.chunks: deque[np.ndarray] = deque()
        self.size = 0
        self.new = 0   # samples since the last read

    def set_rate(self, sr: int) -> None:
        if int(sr) != self.sr:
            self.sr = int(sr)
            self.chunks.clear()
            self.size = self.new = 0

    def push(self, wave: np.ndarray) -> None:
        self.chunks.append(wave)
        self.size += len(wave)
        self.new += len(wave)
        cap = int(self.seconds * self.sr)
        while self.chunks and self.size - len(self.chunks[0]) >= cap:
            self.size -= len(self.chunks.popleft())

    def ready(self, hop_s: float) -> bool:
        return self.new >= hop_s * self.sr and self.size >= 0.25 * self.sr

    def read(self) -> np.ndarray:
        self.new = 0
        wave = np.concatenate(list(self.chunks)) if self.chunks else np.zeros(0, np.float32)
        return wave[-int(self.seconds * self.sr):]


class LiveSession:
    def __init__(self, ws: WebSocket, engine, infer, settings, counts) -> None:
        self.ws, self.engine, self.infer, self.settings, self.counts = ws, engine, infer, settings, counts
        self.latest: bytes | None = None
        self.wake = asyncio.Event()
        self.closed = False
        self.dropped = self.processed = 0
        self.ring = AudioRing(getattr(engine, "audio_window_s", 3.0))
        self.hello = False   # a hello with a valid sample rate has arrived
        self.voice: dict | None = None
        self.audio: tuple | None = None   # the voice window last classified (in memory only)
        self.times: deque[float] = deque(maxlen=20)

    async def send(self, msg: dict) -> None:
        if not self.closed:
            await self.ws.send_text(json.dumps(msg))

    async def run(self) -> None:
        await self.ws.accept()
        await self.send({"type": "ready", "labels": list(self.engine.label_names),
                         "modalities": list(self.engine.modalities), "max_fps": self.settings.live_max_fps})
        worker = asyncio.create_task(self.work())
        try:
            await self.receive()
        finally:
            self.closed = True
            self.wake.set()
            worker.cancel()
            try:
                await worker
            except (asyncio.CancelledError, Exception):
                pass
            self.counts["live_frames"] += self.processed
            self.counts["live_dropped"] += self.dropped

    async def receive(self) -> None:
        while True:
            try:
                msg = await self.ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if msg["type"] == "websocket.disconnect":
                return
            try:
                if msg.get("text") is not None:
                    self.control(msg["text"])
                elif msg.get("bytes") is not None:
                    self.data(msg["bytes"])
            except BadInput as err:
                await self.send({"type": "error", "code": err.code, "message": err.message})
            except Exception as err:  # a message nobody foresaw: answered, and the session goes on
                log.warning("live message failed: %s", type(err).__name__)
                await self.send({"type": "error", "code": "bad_message",
                                 "message": f"the message could not be handled ({type(err).__name__})"})

    def control(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError):
            raise BadInput(400, "bad_message", f"text messages are JSON, e.g. {HELLO}") from None
        if not isinstance(msg, dict):
            raise BadInput(400, "bad_message", f"text messages are JSON objects, e.g. {HELLO}")
        if msg.get("type") != "hello":
            raise BadInput(400, "bad_message", f"unknown message type {_show(msg.get('type'))}; the one text "
                           f"message is {HELLO}")
        self.ring.set_rate(sample_rate(msg.get("sample_rate")))
        self.hello = True

    def data(self, payload: bytes) -> None:
        if not payload:
            raise BadInput(400, "bad_message", "an empty binary message; binary messages are 0x01 + a JPEG "
                           "frame or 0x02 + float32 audio")
        kind, body = payload[0], payload[1:]
        if kind == FRAME:
            if len(body) > MAX_FRAME_BYTES:
                raise BadInput(413, "frame_too_large", "live frames are JPEGs under 4 MB; send a smaller frame")
            if self.latest is not None:
                self.dropped += 1     # the model is busy: the newer frame wins
            self.latest = body
            self.wake.set()
        elif kind == AUDIO:
            if "voice" not in self.engine.modalities:
                return
            if not self.hello:
                raise BadInput(400, "no_hello", f"audio before hello: its sample rate is unknown, so the chunk "
                               f"was dropped; send {HELLO} (your microphone's rate) first")
            self.ring.push(decode.pcm_f32(body))
        else:
            raise BadInput(400, "bad_message", f"unknown live message type {kind}; 1 = frame, 2 = audio")

    async def work(self) -> None:
        while not self.closed:
            await self.wake.wait()
            self.wake.clear()
            frame, self.latest = self.latest, None
            if frame is None or self.closed:
                continue
            t0 = time.perf_counter()
            try:
                audio = None
                if "voice" in self.engine.modalities and self.ring.ready(AUDIO_HOP_S):
                    audio = (self.ring.read(), self.ring.sr)
                result = await self.infer(self._predict, frame, audio)
            except BadInput as err:
                await self.send({"type": "error", "code": err.code, "message": err.message})
                continue
            except Exception as err:  # one bad frame must not end the session
                await self.send({"type": "error", "code": "frame_failed",
                                 "message": public(f"live frame: {type(err).__name__}: {err}")})
                continue
            now = time.perf_counter()
            self.times.append(now)
            self.processed += 1
            fps = (len(self.times) - 1) / (self.times[-1] - self.times[0]) if len(self.times) > 1 else 0.0
            await self.send({"type": "frame", "seq": self.processed, **result, "fps": round(fps, 2),
                             "dropped": self.dropped, "ms": round((now - t0) * 1000, 1)})

    def _predict(self, frame: bytes, audio):
        rgb = decode.image_rgb(frame, "live frame")
        if audio is not None:
            self.voice = self.engine.live_audio(*audio)
            self.audio = audio
        return {**self.engine.live_frame(rgb, self.voice, self.audio), "voice": self.voice}
