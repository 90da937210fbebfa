"""The web app's JSON API (FastAPI test client): every endpoint, every kind of bad input,
the access token, the live WebSocket, and that nothing is written to disk."""
from __future__ import annotations

import io
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from PIL import Image

from emomm.serve.app import ServeSettings, create_app
from emomm.serve.auth import is_loopback, resolve_token
from emomm.serve.engine import ServeEngine, find_metrics
from emomm.media.sniff import sniff

LABELS = ["angry", "happy", "sad"]


# -- tiny media in their real encodings ------------------------------------------------------------
def png_bytes(w=40, h=30, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


def wav_bytes(seconds=1.0, sr=16000, fmt="WAV") -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr, format=fmt)
    return buf.getvalue()


def mp4_bytes(tmp_path: Path, suffix=".mp4", audio=False) -> bytes:
    from emomm.media.video import write_video
    frames = np.random.default_rng(1).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    wave = (0.2 * np.sin(np.arange(16000) / 5)).astype(np.float32) if audio else None
    return write_video(tmp_path / f"clip{suffix}", frames, fps=10, audio=wave).read_bytes()


# -- a stand-in Predictor with the inference engine's interface (results as their to_dict()) ------------------------------------
class _Res(dict):
    def to_dict(self):
        return dict(self)


class FakePredictor:
    label_names = LABELS
    preprocessing = {"face": {"image_size": 32}, "voice": {"sample_rate": 16000, "duration": 1.0}}
    data_config = {"_target_": "emomm.data.synthetic.SyntheticDataModule", "n_train": 28}

    def __init__(self, modalities=("face",), fail=False):
        self.modalities = list(modalities)
        self.fail = fail
        self.video_paths: list[str] = []

    def predict_image(self, rgb):
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        if self.fail:
            raise RuntimeError("model exploded")
        return _Res(faces=[{"box": [2, 3, 20, 25], "probs": [0.1, 0.7, 0.2], "detector_score": 0.99}])

    def predict_video(self, path):
        assert os.path.isfile(path)
        self.video_paths.append(path)
        return _Res(probs=[0.2, 0.2, 0.6], duration=0.6,
                    windows=[{"start": 0.0, "end": 1.0, "probs": [0.3, 0.3, 0.4]},
                             {"start": 0.5, "end": 1.5, "probs": [0.1, 0.1, 0.8]}])

    def predict_audio(self, wave, sr):
        assert wave.ndim == 1 and sr > 0
        return _Res(probs=[0.6, 0.3, 0.1], duration=len(wave) / sr, windows=[{"start": 0.0, "end": 1.0, "probs": [0.6, 0.3, 0.1]}])

    def predict_text(self, text):
        return _Res(probs=[0.1, 0.8, 0.1] if "glad" in text else [0.8, 0.1, 0.1])

    def classify_audio(self, wave, sr):
        return np.array([0.2, 0.5, 0.3])

    # the live tab of a face + voice model: faces fused with the voice window
    def detect(self, rgb):
        from emomm.faces.base import Faces
        return [Faces(np.array([[2, 3, 20, 25]], np.float32), np.array([0.99], np.float32))]

    def crop_faces(self, rgb, faces):
        return np.zeros((len(faces), 8, 8, 3), np.uint8)

    def classify_faces(self, crops):
        return np.array([[0.1, 0.7, 0.2]] * len(crops))

    def classify_fused(self, crops, wave, sr, with_own=False):
        fused = np.array([[0.1, 0.6, 0.3]] * len(crops))
        return (fused, {"face": self.classify_faces(crops)}) if with_own else fused


def client_for(modalities=("face",), fail=False, tmp_path=None, **settings) -> TestClient:
    metrics = {"test": {"acc": 0.5, "uar": 0.4}, "best_val": {"uar": 0.45, "epoch": 1}}
    engine = ServeEngine(FakePredictor(modalities, fail), "run/checkpoints/best.ckpt", metrics)
    return TestClient(create_app(engine, ServeSettings(**settings)))


@pytest.fixture
def client():
    return client_for(("face", "voice", "text"))


def assert_error(r, status, code=None):
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["status"] == status and body["message"]
    if code:
        assert body["code"] == code, body
    return body


# -- sniffing -------------------------------------------------------------------------------------
def test_sniff_reads_the_bytes_not_the_name(tmp_path):
    assert sniff(png_bytes()).format == "png"
    assert sniff(png_bytes(fmt="JPEG")).format == "jpeg"
    assert sniff(png_bytes(fmt="WEBP")).format == "webp"
    assert sniff(png_bytes(fmt="GIF")).format == "gif"
    assert sniff(png_bytes(fmt="BMP")).format == "bmp"
    assert sniff(wav_bytes()).format == "wav"
    assert sniff(wav_bytes(fmt="FLAC")).format == "flac"
    assert sniff(wav_bytes(fmt="OGG")).format == "ogg"
    assert sniff(b"ID3\x04\x00" + bytes(20)).format == "mp3"
    assert sniff(b"\xff\xfb\x90\x64" + bytes(20)).format == "mp3"
    mp4 = sniff(mp4_bytes(tmp_path))
    assert mp4.format == "mp4" and mp4.kind == "video" and mp4.accepts("audio")
    assert sniff(mp4_bytes(tmp_path, ".webm")).format == "webm"
    assert sniff(mp4_bytes(tmp_path, ".flv")).format == "flv"
    for junk in (b"", b"hello world", b"BM is a text", b"\xff\xff\xff\xff", b"<html></html>"):
        assert sniff(junk) is None, junk
    assert not sniff(png_bytes()).accepts("audio") and not sniff(wav_bytes()).accepts("image")


def test_token_rules():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert resolve_token("127.0.0.1", None) is None
    assert resolve_token("127.0.0.1", "abc") == "abc"
    t1, t2 = resolve_token("0.0.0.0", None), resolve_token("0.0.0.0", None)
    assert t1 and t2 and t1 != t2 and len(t1) >= 20


# -- endpoints --------------------------------------------------------------------------------------
def test_page_and_static_are_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    html = r.text
    assert "Privacy" in html and "nothing is stored" in html.lower()
    for asset in ("/static/app.js", "/static/app.css"):
        assert client.get(asset).status_code == 200
    js = client.get("/static/app.js").text
    for text in (html, js):   # no CDN, nothing fetched from elsewhere
        assert "http://" not in text.replace("http://localhost", "") and "https://" not in text
    assert "getUserMedia" in js and "/ws/live" in js
    for page in ("/docs", "/redoc"):   # the API docs too: their scripts are served from here, no CDN
        doc = client.get(page)
        assert doc.status_code == 200 and "https://" not in doc.text and "cdn." not in doc.text, doc.text[:500]
        for src in re.findall(r"(?:src|href)=['\"]?(/static-offline-docs/[^'\" >]+)", doc.text):
            assert client.get(src).status_code == 200, src
    assert "/static-offline-docs/swagger-ui-bundle.js" in client.get("/docs").text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/predict/image", "/api/predict/video", "/api/predict/audio", "/api/predict/text",
            "/api/model"} <= set(paths)
    schema = paths["/api/predict/image"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "file" in schema["properties"]


def test_model_panel(client):
    m = client.get("/api/model").json()
    assert m["modalities"] == ["face", "voice", "text"] and m["labels"] == LABELS
    assert m["metrics"]["test"]["acc"] == 0.5 and m["metrics"]["best_val"]["uar"] == 0.45
    assert "SyntheticDataModule" in m["data_summary"] and m["limits"]["max_image_mb"] == 10


def test_find_metrics_next_to_the_checkpoint(tmp_path):
    ck = tmp_path / "run" / "checkpoints" / "best.ckpt"
    ck.parent.mkdir(parents=True)
    assert find_metrics(ck) is None
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"test": {"acc": 0.9}}))
    assert find_metrics(ck)["test"]["acc"] == 0.9
    (tmp_path / "run" / "metrics.json").write_text("{broken")
    assert find_metrics(ck) is None


def test_predict_image(client):
    r = client.post("/api/predict/image", files={"file": ("x.png", png_bytes(), "image/png")})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["kind"] == "image" and (d["width"], d["height"]) == (40, 30)
    (face,) = d["faces"]
    assert face["label"] == "happy" and face["confidence"] == pytest.approx(0.7)
    assert face["detector_score"] == pytest.approx(0.99) and "score" not in face   # one name, one meaning
    assert face["box"] == [2, 3, 20, 25] and face["views"] == {"face": face["probs"]}


def test_predict_audio_and_video(client, tmp_path):
    r = client.post("/api/predict/audio", files={"file": ("a.flac", wav_bytes(fmt="FLAC"), "audio/flac")})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["kind"] == "audio" and d["clip"]["label"] == "angry" and d["duration"] == pytest.approx(1.0)
    # a video's audio track feeds the voice endpoint too (browser recordings are WebM)
    r = client.post("/api/predict/audio", files={"file": ("a.mp4", mp4_bytes(tmp_path, audio=True))})
    assert r.status_code == 200, r.text
    r = client.post("/api/predict/video", files={"file": ("v.mp4", mp4_bytes(tmp_path))})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["kind"] == "video" and d["clip"]["label"] == "sad" and [p["t"] for p in d["timeline"]] == [0.5, 1.0]


def test_video_temp_file_is_deleted(tmp_path):
    c = client_for(("face",))
    r = c.post("/api/predict/video", files={"file": ("v.mp4", mp4_bytes(tmp_path))})
    assert r.status_code == 200
    (path,) = c.app.state.engine.predictor.video_paths
    assert not os.path.exists(path) and Path(path).parent == Path(tempfile.gettempdir())


def test_predict_text_form_and_json(client):
    r = client.post("/api/predict/text", data={"text": "I am so glad"})
    assert r.status_code == 200 and r.json()["label"] == "happy"
    r = client.post("/api/predict/text", json={"text": "awful"})
    assert r.status_code == 200 and r.json()["label"] == "angry"


# -- bad input: always 4xx JSON, never a 500 --------------------------------------------------------
def test_wrong_type_from_bytes_not_name(client):
    # a WAV named .png, sent as image/png: refused by its bytes
    body = assert_error(client.post("/api/predict/image", files={"file": ("x.png", wav_bytes(), "image/png")}),
                        415, "unsupported_type")
    assert "x.png" in body["message"] and "wav" in body["message"]
    assert_error(client.post("/api/predict/audio", files={"file": ("a.wav", png_bytes(), "audio/wav")}), 415)
    assert_error(client.post("/api/predict/video", files={"file": ("v.mp4", b"not a video at all")}), 415)
    # a PNG named .txt is still a PNG
    assert client.post("/api/predict/image", files={"file": ("x.txt", png_bytes(), "text/plain")}).status_code == 200


def test_unreadable_media(client):
    broken_png = png_bytes()[:60]
    body = assert_error(client.post("/api/predict/image", files={"file": ("cut.png", broken_png)}), 422, "unreadable")
    assert "cut.png" in body["message"]
    assert_error(client.post("/api/predict/audio", files={"file": ("cut.wav", wav_bytes()[:30])}), 422)
    assert_error(client.post("/api/predict/video", files={"file": ("cut.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(50))}),
                 422, "unreadable")
    assert_error(client.post("/api/predict/audio", files={"file": ("silent.mp4", mp4_bytes(Path(tempfile.mkdtemp())))}),
                 422, "no_audio_track")


def test_empty_and_missing_fields(client):
    assert_error(client.post("/api/predict/image", files={"file": ("e.png", b"")}), 422, "empty_file")
    assert_error(client.post("/api/predict/image", files={"other": ("x.png", png_bytes())}), 422, "missing_file")
    assert_error(client.post("/api/predict/image", data={"a": "b"}), 415, "not_multipart")
    assert_error(client.post("/api/predict/image", content=b"raw", headers={"content-type": "image/png"}),
                 415, "not_multipart")
    assert_error(client.post("/api/predict/text", data={"text": "   "}), 422, "empty_text")
    assert_error(client.post("/api/predict/text", data={"nope": "x"}), 422, "missing_text")
    assert_error(client.post("/api/predict/text", content=b"{", headers={"content-type": "application/json"}), 400)
    assert_error(client.post("/api/predict/text", json=["not", "an", "object"]), 422)


def test_size_caps():
    c = client_for(("face", "text"), max_image_mb=0.01, max_text_chars=20)
    big = png_bytes(200, 200)
    assert len(big) > 10_000
    body = assert_error(c.post("/api/predict/image", files={"file": ("big.png", big)}), 413, "too_large")
    assert "max_image_mb" in body["message"]
    assert_error(c.post("/api/predict/text", data={"text": "x" * 21}), 413, "too_long")
    assert c.post("/api/predict/text", data={"text": "x" * 20}).status_code == 200


def test_wrong_modality_for_the_model():
    c = client_for(("text",))
    body = assert_error(c.post("/api/predict/image", files={"file": ("x.png", png_bytes())}), 422, "wrong_modality")
    assert "['text']" in body["message"]
    assert_error(c.post("/api/predict/audio", files={"file": ("a.wav", wav_bytes())}), 422, "wrong_modality")
    assert_error(client_for(("face",)).post("/api/predict/text", data={"text": "hi"}), 422, "wrong_modality")


def test_model_failure_is_a_4xx_and_the_server_lives_on():
    c = client_for(("face",), fail=True)
    body = assert_error(c.post("/api/predict/image", files={"file": ("x.png", png_bytes())}), 422)
    assert "model exploded" in body["message"]
    assert c.get("/api/model").status_code == 200
    assert_error(c.get("/no/such/page"), 404)
    stats = c.get("/api/stats").json()
    assert stats["error_422"] == 1 and stats["error_404"] == 1


# -- access token ------------------------------------------------------------------------------------
def test_token_checked_on_every_request_and_websocket():
    c = client_for(("face",), token="s3cret")
    for path in ("/", "/api/model", "/static/app.js", "/docs", "/openapi.json"):
        assert_error(c.get(path), 401, "unauthorized")
    assert_error(c.post("/api/predict/image", files={"file": ("x.png", png_bytes())}), 401)
    assert_error(c.get("/api/model", headers={"authorization": "Bearer wrong"}), 401)
    assert c.get("/api/model", headers={"authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/api/model", headers={"x-emomm-token": "s3cret"}).status_code == 200
    # the printed link: ?token= opens the page and leaves a cookie for its own requests
    r = c.get("/?token=s3cret")
    assert r.status_code == 200 and "emomm_token" in r.headers.get("set-cookie", "")
    assert c.get("/api/model").status_code == 200   # the client kept the cookie
    c.cookies.clear()
    from starlette.websockets import WebSocketDisconnect
    with pytest.raises(WebSocketDisconnect) as err:
        with c.websocket_connect("/ws/live") as ws:
            ws.receive_text()
    assert err.value.code == 4401
    with c.websocket_connect("/ws/live?token=s3cret") as ws:
        assert json.loads(ws.receive_text())["type"] == "ready"


def test_cli_host_rules(monkeypatch, tmp_path):
    """A non-loopback host without token= gets a generated one, printed in the link."""
    from omegaconf import OmegaConf

    import emomm.serve.__main__ as cli
    monkeypatch.setattr(ServeEngine, "from_checkpoint",
                        classmethod(lambda cls, p, device="cpu", backend="torch", **options: ServeEngine(FakePredictor(), p)))
    ck = tmp_path / "m.ckpt"
    ck.write_bytes(b"x")
    base = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "serve.yaml")
    base.pop("defaults")
    base.pop("hydra")
    base.paths = {"log_dir": str(tmp_path)}
    base.ckpt_path = str(ck)
    app, url, _ = cli.build(base)
    assert url == "http://127.0.0.1:8000/" and app.state.settings.token is None
    base.host = "0.0.0.0"
    app, url, _ = cli.build(base)
    tok = app.state.settings.token
    assert tok and url.endswith(f"?token={tok}")
    base.token = "mine"
    assert cli.build(base)[0].state.settings.token == "mine"


# -- live WebSocket ---------------------------------------------------------------------------------
def jpeg(w=64, h=48) -> bytes:
    return png_bytes(w, h, "JPEG")


def test_live_frames_and_audio(client):
    with client.websocket_connect("/ws/live") as ws:
        ready = json.loads(ws.receive_text())
        assert ready["type"] == "ready" and ready["labels"] == LABELS
        ws.send_text(json.dumps({"type": "hello", "sample_rate": 16000}))
        pcm = (0.1 * np.sin(np.arange(16000) / 3)).astype("<f4").tobytes()
        ws.send_bytes(b"\x02" + pcm)
        ws.send_bytes(b"\x01" + jpeg())
        msg = json.loads(ws.receive_text())
        assert msg["type"] == "frame" and msg["seq"] == 1 and msg["faces"][0]["label"] == "happy"
        assert msg["voice"]["label"] == "happy" and msg["ms"] >= 0
        views = msg["faces"][0]["views"]   # simple (face, voice) and hybrid (fused) views
        assert views == {"fused": [0.1, 0.6, 0.3], "face": [0.1, 0.7, 0.2], "voice": msg["voice"]["probs"]}
        # bad messages are answered, and the session carries on
        ws.send_bytes(b"\x07abc")
        assert json.loads(ws.receive_text())["type"] == "error"
        ws.send_bytes(b"\x01" + b"not a jpeg")
        assert json.loads(ws.receive_text())["type"] == "error"
        ws.send_text("{nope")
        assert json.loads(ws.receive_text())["code"] == "bad_message"
        ws.send_bytes(b"\x01" + jpeg())
        assert json.loads(ws.receive_text())["seq"] == 2


def test_live_drops_frames_instead_of_queueing():
    """Frames sent faster than the model answers: only the newest waiting one is processed."""
    import threading
    gate = threading.Event()

    class Slow(FakePredictor):
        def predict_image(self, rgb):
            gate.wait(5)
            return super().predict_image(rgb)

    engine = ServeEngine(Slow(("face",)), "x.ckpt")
    c = TestClient(create_app(engine, ServeSettings()))
    with c.websocket_connect("/ws/live") as ws:
        json.loads(ws.receive_text())
        for _ in range(6):
            ws.send_bytes(b"\x01" + jpeg())
        import time
        time.sleep(0.3)    # all six have arrived while the first is still in the model
        gate.set()
        first = json.loads(ws.receive_text())
        second = json.loads(ws.receive_text())
        assert (first["seq"], second["seq"]) == (1, 2)
        assert second["dropped"] == 4   # frames 2-5 were replaced by frame 6
    assert c.get("/api/stats").json()["live_dropped"] == 4


def test_nothing_written_to_disk(client, tmp_path, monkeypatch):
    """A large upload (above Starlette's 1 MB spool limit) never touches a temporary file."""
    opened = []
    real = tempfile.SpooledTemporaryFile.__init__
    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "__init__",
                        lambda self, *a, **k: (opened.append(1), real(self, *a, **k))[1])
    mkstemp = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: (opened.append(2), mkstemp(*a, **k))[1])
    big = wav_bytes(seconds=40)
    assert len(big) > 1_100_000
    r = client.post("/api/predict/audio", files={"file": ("long.wav", big)})
    assert r.status_code == 200 and opened == []


# -- the real engine on a tiny trained checkpoint ---------------------------------------------------
@pytest.fixture(scope="module")
def real_client(tmp_path_factory):
    from tests.serve_helpers import tiny_face_checkpoint
    ckpt = tiny_face_checkpoint(tmp_path_factory.getbasetemp())
    return TestClient(create_app(ServeEngine.from_checkpoint(ckpt)))


def test_real_model_image_video_and_panel(real_client, tmp_path):
    from emomm.media.video import write_video
    from tests.serve_helpers import face_frame

    m = real_client.get("/api/model").json()
    assert m["modalities"] == ["face"] and len(m["labels"]) == 7
    assert 0 <= m["metrics"]["test"]["acc"] <= 1 and m["preprocessing"]["face"]["image_size"] == 32
    buf = io.BytesIO()
    Image.fromarray(face_frame(400, 300)).save(buf, "JPEG")
    d = real_client.post("/api/predict/image", files={"file": ("p.jpg", buf.getvalue())}).json()
    (face,) = d["faces"]
    x1, y1, x2, y2 = face["box"]
    assert 100 < (x1 + x2) / 2 < 300 and 75 < (y1 + y2) / 2 < 225   # the face is in the middle
    assert sum(face["probs"]) == pytest.approx(1, abs=1e-4) and face["label"] in m["labels"]
    blank = io.BytesIO()
    Image.new("RGB", (200, 150), (120, 120, 120)).save(blank, "PNG")
    assert real_client.post("/api/predict/image", files={"file": ("b.png", blank.getvalue())}).json()["faces"] == []
    clip = write_video(tmp_path / "v.mp4", np.stack([face_frame()] * 12), fps=6).read_bytes()
    v = real_client.post("/api/predict/video", files={"file": ("v.mp4", clip)}).json()
    assert v["timeline"] and v["duration"] > 1 and v["clip"]["label"] in m["labels"]
    assert_error(real_client.post("/api/predict/text", data={"text": "hello"}), 422, "wrong_modality")


def test_a_list_of_checkpoints_is_served_as_their_ensemble(real_client, tmp_path, tmp_path_factory):
    """``python -m emomm.serve ckpt_path=[a,b]``: the panel names both runs and shows no
    single run's metrics; two copies of one model predict as that model."""
    from omegaconf import OmegaConf

    import emomm.serve.__main__ as cli
    from tests.serve_helpers import face_frame, tiny_face_checkpoint
    ckpt = tiny_face_checkpoint(tmp_path_factory.getbasetemp())  # real_client's run, trained once
    base = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "serve.yaml")
    base.pop("defaults")
    base.pop("hydra")
    base.paths = {"log_dir": str(tmp_path)}
    base.ckpt_path = [str(ckpt), str(ckpt)]
    app, _, served = cli.build(base)
    assert served == [ckpt, ckpt]
    pair = TestClient(app)
    m = pair.get("/api/model").json()
    assert m["checkpoint"] == "mean of 2: serve_run/best.ckpt, serve_run/best.ckpt" and m["metrics"] is None
    buf = io.BytesIO()
    Image.fromarray(face_frame(400, 300)).save(buf, "JPEG")
    post = lambda c: c.post("/api/predict/image", files={"file": ("p.jpg", buf.getvalue())}).json()  # noqa: E731
    (one,), (two,) = post(real_client)["faces"], post(pair)["faces"]
    np.testing.assert_allclose(two["probs"], one["probs"], rtol=1e-4, atol=1e-6)
    base.backend = "onnxruntime"
    with pytest.raises(ValueError, match="needs backend=torch"):
        cli.build(base)
