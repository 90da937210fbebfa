"""The web server under hostile requests: every body capped while it is read (the app stops
asking for bytes at the cap), a fuzzed live WebSocket protocol answered message by message,
the no-token WebSocket closed with 4401 on a real server, and no server path in any error."""
from __future__ import annotations

import asyncio
import json
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from emomm.serve.app import ServeSettings, create_app
from emomm.serve.engine import ServeEngine
from emomm.serve.errors import TEMP_PREFIX, public
from tests.serve_helpers import running_server
from tests.test_serve_api import FakePredictor, _Res, assert_error, client_for, jpeg, mp4_bytes, png_bytes

TMP = tempfile.gettempdir()


def no_server_path(text: str) -> str:
    """``text`` (an answer's body) names neither the temporary folder nor a temporary upload."""
    assert TMP not in text and TEMP_PREFIX not in text, text
    return text


# -- the body cap, at the ASGI level: how many chunks did the app ask for? -------------------------
def asgi_post(app, path: str, chunks, headers: dict[str, str]) -> tuple[int, dict, int]:
    """POST ``chunks`` (an iterable of bytes, each one ``http.request`` message) to ``app``;
    returns (status, JSON body, bytes of the chunks the app asked for)."""
    consumed, sent = 0, []
    it = iter(chunks)

    async def receive():
        nonlocal consumed
        try:
            chunk = next(it)
        except StopIteration:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), consumed


CHUNK = 64 * 1024


def endless(n: int = 2000, first: bytes = b'{"text": "'):
    """``n`` chunks of 64 KB (128 MB), the first opening a JSON string."""
    yield first + b"x" * (CHUNK - len(first))
    for _ in range(n - 1):
        yield b"x" * CHUNK


@pytest.mark.parametrize("framing", ["chunked", "no_length", "lying_length"])
def test_a_json_body_over_the_cap_is_cut_off_while_read(framing):
    app = client_for(("face", "text")).app
    framed = {"chunked": {"transfer-encoding": "chunked"}, "no_length": {},
              "lying_length": {"content-length": "100"}}[framing]
    headers = {"content-type": "application/json", **framed}
    status, body, consumed = asgi_post(app, "/api/predict/text", endless(), headers)
    assert status == 413 and body["error"]["code"] == "too_large", body
    assert "limits.max_body_mb" in body["error"]["message"]
    assert 1_000_000 < consumed <= 1_000_000 + CHUNK, f"the app read {consumed} bytes; the cap is 1 MB"


def test_a_declared_length_over_the_cap_is_refused_unread():
    app = client_for(("face", "text")).app
    status, body, consumed = asgi_post(app, "/api/predict/text", endless(),
                                       {"content-type": "application/json", "content-length": "500000000"})
    assert (status, body["error"]["code"], consumed) == (413, "too_large", 0)


@pytest.mark.parametrize("path,ctype", [
    ("/api/predict/text", "application/json; charset=utf-8"),
    ("/api/predict/text", "application/x-www-form-urlencoded"),
    ("/api/predict/text", "multipart/form-data; boundary=xyz"),
    ("/api/predict/text", "text/plain"),
    ("/api/model", "application/json"),          # a GET route: POST answers 405, the body unread
    ("/no/such/route", "application/json"),
])
def test_every_route_and_content_type_is_capped(path, ctype):
    app = client_for(("face", "text")).app
    status, body, consumed = asgi_post(app, path, endless(first=b"text="), {"content-type": ctype})
    assert 400 <= status < 500 and body["error"]["message"], body
    assert consumed <= 1_000_000 + CHUNK


def multipart(n: int | None):
    """A multipart upload of a file of ``n`` - 1 more chunks of 64 KB (None: endless)."""
    yield (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
           b"Content-Type: image/png\r\n\r\n" + b"x" * 1000)
    i = 1
    while n is None or i < n:
        yield b"x" * CHUNK
        i += 1
    yield b"\r\n--xyz--\r\n"


def test_uploads_keep_their_own_cap_and_json_gets_the_small_one():
    app = client_for(("face", "text"), max_image_mb=3, max_body_mb=0.2).app
    form = {"content-type": "multipart/form-data; boundary=xyz"}
    # 2.5 MB of image upload: under its 3 MB cap, read whole (and refused for what it is)
    status, body, consumed = asgi_post(app, "/api/predict/image", multipart(40), form)
    assert consumed == sum(map(len, multipart(40)))
    assert status == 415 and body["error"]["code"] == "unsupported_type", body
    status, body, consumed = asgi_post(app, "/api/predict/image", multipart(None), form)
    assert status == 413 and "limits.max_image_mb" in body["error"]["message"]
    cap = 3_000_000 + 64 * 1024   # the file's cap and the multipart headers
    assert cap < consumed <= cap + CHUNK
    status, body, consumed = asgi_post(app, "/api/predict/text", endless(), {"content-type": "application/json"})
    assert status == 413 and 200_000 < consumed <= 200_000 + CHUNK
    c = TestClient(app)
    assert c.post("/api/predict/text", json={"text": "glad " * 1000}).status_code == 200   # 5 kB: fine
    assert c.get("/api/model").json()["limits"]["max_body_mb"] == 0.2
    assert c.get("/api/stats").json()["error_413"] == 2


def test_nested_json_is_a_400_not_a_500():
    c = client_for(("text",))
    assert_error(c.post("/api/predict/text", content=b"[" * 200_000, headers={"content-type": "application/json"}),
                 400, "bad_json")


# -- the body cap on a real server: the answer comes before the body ends -------------------------
def _raw(port: int, head: bytes, body_chunks, timeout: float = 10) -> tuple[int, bytes]:
    """Send ``head`` then ``body_chunks`` on a socket (until the server stops taking them), then
    read the answer; returns (bytes sent, bytes received)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(timeout)
        s.sendall(head)
        sent = 0
        try:
            for chunk in body_chunks:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:   # the server answered and closed
            pass
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
        except OSError:
            pass
    return sent, got


def test_real_server_answers_413_mid_body_and_closes():
    app = client_for(("face", "text")).app
    with running_server(app) as url:
        port = int(url.rsplit(":", 1)[1])
        head = (b"POST /api/predict/text HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (CHUNK, b"x" * CHUNK)
        # 1.2 MB and no final chunk: a server that waited for the whole body would never answer
        _, got = _raw(port, head, [chunk] * 19)
        assert got.startswith(b"HTTP/1.1 413") and b"connection: close" in got.lower(), got[:300]
        answer = json.loads(got.split(b"\r\n\r\n", 1)[1])
        assert answer["error"]["code"] == "too_large"
        # 64 MB offered: the server stops taking it long before the end
        sent, got = _raw(port, head, (chunk for _ in range(1000)))
        assert got.startswith(b"HTTP/1.1 413") and sent < 32_000_000, sent
        head = (b"POST /api/predict/text HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 500000000\r\n\r\n")
        _, got = _raw(port, head, [])
        assert got.startswith(b"HTTP/1.1 413")


# -- the live WebSocket, fuzzed -------------------------------------------------------------------
MALFORMED_TEXT = [
    '{"type": "hello", "sample_rate": "abc"}', '{"type": "hello", "sample_rate": NaN}',
    '{"type": "hello", "sample_rate": Infinity}', '{"type": "hello", "sample_rate": -Infinity}',
    '{"type": "hello", "sample_rate": 1e400}', '{"type": "hello", "sample_rate": -48000}',
    '{"type": "hello", "sample_rate": 0}', '{"type": "hello", "sample_rate": 3}',
    '{"type": "hello", "sample_rate": 1' + "0" * 3000 + '}', '{"type": "hello", "sample_rate": 10000000}',
    '{"type": "hello", "sample_rate": null}', '{"type": "hello", "sample_rate": true}',
    '{"type": "hello", "sample_rate": [48000]}', '{"type": "hello", "sample_rate": {"hz": 48000}}',
    '{"type": "hello"}', '{"sample_rate": 48000}', '{"type": 7, "sample_rate": 48000}',
    '{"type": "goodbye"}', '["hello", 48000]', '"hello"', "48000", "null", "", "not json", "{",
    "[" * 100_000, '{"type": "hello", "sample_rate": 48000' + " " * 1000,
]
MALFORMED_BINARY = [b"", b"\x00", b"\x07abc", b"\x02" + b"\x00" * 7, b"\xff" * 100]


def _error(ws) -> dict:
    msg = json.loads(ws.receive_text())
    assert msg["type"] == "error" and msg["code"] and msg["message"], msg
    no_server_path(json.dumps(msg))
    return msg


def _still_usable(ws) -> None:
    """A correct hello, audio at its rate and a frame: the session goes on as if nothing happened."""
    ws.send_text(json.dumps({"type": "hello", "sample_rate": 48000}))
    ws.send_bytes(b"\x02" + (0.1 * np.sin(np.arange(48000) / 5)).astype("<f4").tobytes())
    ws.send_bytes(b"\x01" + jpeg())
    msg = json.loads(ws.receive_text())
    assert msg["type"] == "frame" and msg["faces"] and msg["voice"]["label"], msg


@pytest.mark.timeout(60)   # an unanswered message would leave receive_text() waiting
@pytest.mark.parametrize("text", MALFORMED_TEXT, ids=lambda t: t[:40])
def test_live_malformed_text_is_answered_and_the_session_goes_on(text):
    with client_for(("face", "voice")).websocket_connect("/ws/live") as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"
        ws.send_text(text)
        _error(ws)
        _still_usable(ws)


@pytest.mark.timeout(60)
def test_live_malformed_binary_and_audio_before_hello():
    c = client_for(("face", "voice"))
    with c.websocket_connect("/ws/live") as ws:
        json.loads(ws.receive_text())
        ws.send_bytes(b"\x02" + np.zeros(400, "<f4").tobytes())      # audio, rate not announced
        assert _error(ws)["code"] == "no_hello"
        for payload in MALFORMED_BINARY:
            ws.send_bytes(payload)
            _error(ws)
        ws.send_bytes(b"\x01")                                         # an empty frame
        _error(ws)
        ws.send_text('{"type": "hello", "sample_rate": NaN}')         # a bad hello after a good one
        _error(ws)
        _still_usable(ws)
        ws.send_text('{"type": "hello", "sample_rate": "x"}')
        _error(ws)
        ws.send_bytes(b"\x01" + jpeg())                                # the last good rate still holds
        assert json.loads(ws.receive_text())["type"] == "frame"
    assert c.get("/api/model").status_code == 200


# -- the token on a real server: close code 4401, not HTTP 403 ------------------------------------
def test_websocket_without_token_closes_with_4401_on_a_real_server():
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    app = client_for(("face",), token="s3cret").app
    with running_server(app) as url:
        ws_url = url.replace("http://", "ws://") + "/ws/live"
        for bad in ("", "?token=wrong"):
            with pytest.raises(ConnectionClosed) as err:   # an HTTP 403 raises InvalidStatus instead
                with connect(ws_url + bad, open_timeout=10) as ws:
                    ws.recv(timeout=10)
            assert err.value.rcvd.code == 4401 and "token" in err.value.rcvd.reason
        with connect(ws_url + "?token=s3cret", open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
    js = (Path(__file__).resolve().parents[1] / "emomm" / "serve" / "static" / "app.js").read_text()
    assert 'e.code === 4401) showError("Access token required")' in js   # what the page shows for it


# -- no server path in any answer -----------------------------------------------------------------
def test_public_messages_hide_server_paths():
    tmp = f"{TMP}/{TEMP_PREFIX}ab12cd_3.mp4"
    assert public(f"{tmp}: cannot decode", tmp, "clip.mp4") == "clip.mp4: cannot decode"
    assert public(f"Invalid data: '{tmp}'") == "Invalid data: 'the upload'"
    assert public("No such file: '/home/me/.cache/models/face.pth'") == "No such file: 'face.pth'"
    assert public(r"C:\Users\me\x.ckpt is bad") == "x.ckpt is bad"
    for keep in ("send a JPEG/PNG image or WAV/MP3 audio", "restart with limits.max_body_mb=...",
                 "see http://localhost:8000/api/model", '{"type": "hello", "sample_rate": 48000}'):
        assert public(keep) == keep


class LeakyPredictor(FakePredictor):
    """Failures whose messages carry server paths, as real decoders' and loaders' do."""

    def predict_video(self, path):
        from emomm.media.video import read_frames
        read_frames(path)   # the real decoder: fails on undecodable frames, naming the file
        return _Res(probs=[0.2, 0.2, 0.6], duration=1.0, windows=[],
                    error=f"no usable audio track ({path}: no audio stream); frames only")

    def predict_image(self, rgb):   # also what the live tab calls for a face model
        raise FileNotFoundError(f"[Errno 2] No such file or directory: '{Path.home()}/.cache/models/"
                                f"face.tflite' (copied to {TMP}/{TEMP_PREFIX}x1y2z3.tflite)")


def _zeroed_mp4(tmp_path: Path) -> bytes:
    """An MP4 whose header is intact and whose frames are zeros: the header read passes, the
    frame decoder fails (with the file's path in FFmpeg's error)."""
    from emomm.media.video import write_video
    from tests.serve_helpers import face_frame
    clip = bytearray(write_video(tmp_path / "v.mp4", np.stack([face_frame()] * 12), fps=6).read_bytes())
    start, end = clip.find(b"mdat") + 4, clip.find(b"moov") - 4
    assert 0 < start < end
    clip[start:end] = bytes(end - start)
    return bytes(clip)


def test_no_error_names_a_server_path(tmp_path):
    c = TestClient(create_app(ServeEngine(LeakyPredictor(("face",)), "run/checkpoints/best.ckpt"), ServeSettings()))
    body = assert_error(c.post("/api/predict/video", files={"file": ("zeroed.mp4", _zeroed_mp4(tmp_path))}),
                        422, "unreadable")
    assert body["message"].startswith("zeroed.mp4: cannot decode video")
    r = c.post("/api/predict/video", files={"file": ("tiny.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(400))})
    no_server_path(r.text)
    r = c.post("/api/predict/video", files={"file": ("small.mp4", mp4_bytes(tmp_path))})
    assert r.status_code == 200 and r.json()["note"] == "no usable audio track (small.mp4: no audio stream); frames only"
    body = assert_error(c.post("/api/predict/image", files={"file": ("p.png", png_bytes())}), 422)
    assert body["message"].startswith("p.png: ") and "'face.tflite' (copied to p.png)" in body["message"]
    assert str(Path.home()) not in body["message"]
    for r in (c.post("/api/predict/video", files={"file": ("zeroed.mp4", _zeroed_mp4(tmp_path))}),
              c.post("/api/predict/image", files={"file": ("p.png", png_bytes())})):
        no_server_path(r.text)
    with c.websocket_connect("/ws/live") as ws:
        json.loads(ws.receive_text())
        ws.send_bytes(b"\x01" + jpeg())
        assert _error(ws)["code"] == "frame_failed"
