"""The FastAPI app: the page, the JSON API it uses, and the live WebSocket.

``create_app(engine, settings)`` builds it around a :class:`~emomm.serve.engine.ServeEngine`
(or anything with the same methods: tests pass a fake). Routes:

* ``GET /``: the page (``static/``, no CDN, no build step); ``GET /api/model``: the model panel;
* ``POST /api/predict/{image,video,audio}`` (multipart field ``file``) and
  ``POST /api/predict/text`` (field ``text``): prediction JSON;
* ``WS /ws/live``: camera frames and microphone audio in, predictions out (:mod:`.live`);
* ``GET /api/stats``: request counts (the only thing the server keeps about its traffic);
* ``GET /docs``: FastAPI's OpenAPI page.

Every refusal is a 4xx JSON ``{"error": {"code", "message", "status"}}``; an unexpected
failure while predicting is a 422 naming the upload (by the client's file name: no message
names a server path), so no request can answer 500 or take the server down. Every request
body is capped as it is read (:mod:`.limits`). Inference runs in a thread pool, at most
``settings.workers`` at a time, so the event loop keeps serving the page, other requests and
the WebSocket meanwhile.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from emomm.serve import decode
from emomm.serve.auth import COOKIE, TokenMiddleware
from emomm.serve.errors import BadInput, public
from emomm.media.sniff import sniff
from emomm.serve.limits import BodyLimit
from emomm.serve.live import LiveSession
from emomm.serve.uploads import OVERHEAD, read_form, read_urlencoded

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"

#: Which model modalities can answer each upload endpoint.
ENDPOINT_MODALITIES = {"image": ("face",), "video": ("face", "video", "voice"),
                       "audio": ("voice",), "text": ("text",)}
#: The media upload routes, whose bodies are capped by their own ``limits.max_<kind>_mb``.
UPLOAD_PATHS = {f"/api/predict/{kind}": kind for kind in ("image", "video", "audio")}


@dataclass
class ServeSettings:
    """Limits and access (``conf/serve.yaml``)."""
    max_image_mb: float = 10.0
    max_audio_mb: float = 25.0
    max_video_mb: float = 100.0
    max_text_chars: int = 5000
    max_body_mb: float = 1.0     # any other request body: JSON, text and forms
    workers: int = 2             # inferences at once (threads); more only queue on a small CPU
    token: str | None = None     # None: open (loopback only; the CLI enforces that)
    live_max_fps: float = 15.0   # the live page never sends faster than this

    def cap(self, endpoint: str) -> int:
        return int(float(getattr(self, f"max_{endpoint}_mb")) * 1_000_000)

    def body_cap(self, path: str) -> tuple[int, str]:
        """The most bytes a request body to ``path`` may have, and the setting that says so:
        a media upload endpoint its file cap plus the multipart headers, anything else
        (the text endpoint's JSON or form, every other route) ``max_body_mb``."""
        endpoint = UPLOAD_PATHS.get(path)
        if endpoint:
            return self.cap(endpoint) + OVERHEAD, f"limits.max_{endpoint}_mb"
        return int(float(self.max_body_mb) * 1_000_000), "limits.max_body_mb"


def _multipart_doc(field: str, binary: bool) -> dict:
    prop = {"type": "string", "format": "binary"} if binary else {"type": "string"}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [field], "properties": {field: prop}}}}}}


def create_app(engine, settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    # FastAPIOffline: /docs and /redoc from Swagger UI and ReDoc files shipped in the package
    # (FastAPI's own pages fetch them from a CDN: a blank page offline, and a request out).
    app = FastAPIOffline(title="emomm", version="0.1.0",
                         description="Emotion recognition from a face image, a video, a recording or a "
                                     "sentence. Uploads are processed in memory and never stored.")
    app.state.engine, app.state.settings = engine, settings
    app.state.counts = Counter()
    app.state.slots = asyncio.Semaphore(max(1, int(settings.workers)))
    counts: Counter = app.state.counts

    async def infer(fn: Callable, *args) -> Any:
        async with app.state.slots:
            return await run_in_threadpool(fn, *args)

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, err: BadInput):
        counts[f"error_{err.status}"] += 1
        return JSONResponse(err.to_dict(), status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, err: RequestValidationError):
        counts["error_422"] += 1
        msg = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in err.errors())
        return JSONResponse(BadInput(422, "invalid_request", msg).to_dict(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        counts[f"error_{err.status_code}"] += 1
        return JSONResponse({"error": {"code": "http", "status": err.status_code, "message": str(err.detail)}},
                            status_code=err.status_code)

    def need(endpoint: str) -> None:
        have = engine.modalities
        if not any(m in have for m in ENDPOINT_MODALITIES[endpoint]):
            raise BadInput(422, "wrong_modality", f"this model reads {list(have)}, not {endpoint} input; "
                           f"{endpoint} needs a model with one of {list(ENDPOINT_MODALITIES[endpoint])} "
                           "(start the server with another ckpt_path=...)")

    async def upload(request: Request, endpoint: str):
        need(endpoint)
        form = await read_form(request, settings.cap(endpoint), f"limits.max_{endpoint}_mb")
        if "file" not in form.files:
            raise BadInput(422, "missing_file", f"send the {endpoint} as multipart field `file`")
        data = form.files["file"]
        name = Path(form.filenames.get("file") or "upload").name[:120]
        if not data:
            raise BadInput(422, "empty_file", f"{name}: the file is empty")
        kind = sniff(data)
        if kind is None or not kind.accepts(endpoint):
            what = f"a {kind.format} {kind.kind} file" if kind else "no known media format"
            raise BadInput(415, "unsupported_type", f"{name}: its bytes are {what}, not {endpoint}; "
                           f"send {_EXPECTED[endpoint]} (the type is read from the content, not the name)")
        return data, kind, name

    async def guarded(endpoint: str, name: str, fn: Callable, *args):
        try:
            result = await infer(fn, *args)
        except BadInput:
            raise
        except Exception as err:  # a decoder or model failure on this input: the client's 4xx
            log.warning("%s prediction failed: %s", endpoint, type(err).__name__)
            raise BadInput(422, "unreadable", f"{name}: the {endpoint} could not be processed "
                           f"({type(err).__name__}: {public(str(err), name=name)})") from None
        counts[f"predict_{endpoint}"] += 1
        return result

    @app.get("/", include_in_schema=False)
    async def index(request: Request):
        resp = FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})
        token = request.query_params.get("token")
        if settings.token and token:  # already checked by the middleware: keep it for the page
            resp.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return resp

    @app.get("/api/model", summary="The checkpoint: modalities, labels, training data, metrics")
    async def model_info():
        return {**engine.info(), "limits": {"max_image_mb": settings.max_image_mb,
                "max_audio_mb": settings.max_audio_mb, "max_video_mb": settings.max_video_mb,
                "max_text_chars": settings.max_text_chars, "max_body_mb": settings.max_body_mb,
                "live_max_fps": settings.live_max_fps}}

    @app.get("/api/stats", summary="Request counts (the only record the server keeps)")
    async def stats():
        return dict(counts)

    @app.post("/api/predict/image", summary="Faces in a photo: boxes, labels, probabilities",
              openapi_extra=_multipart_doc("file", True))
    async def predict_image(request: Request):
        data, kind, name = await upload(request, "image")
        return await guarded("image", name, lambda: engine.image(decode.image_rgb(data, name)))

    @app.post("/api/predict/video", summary="A video: emotion over time and the clip result",
              openapi_extra=_multipart_doc("file", True))
    async def predict_video(request: Request):
        data, kind, name = await upload(request, "video")
        return await guarded("video", name, engine.video, data, kind, name)

    @app.post("/api/predict/audio", summary="A recording: emotion over time and the clip result",
              openapi_extra=_multipart_doc("file", True))
    async def predict_audio(request: Request):
        data, kind, name = await upload(request, "audio")
        return await guarded("audio", name, lambda: engine.audio(*decode.audio_wave(data, kind, name)))

    @app.post("/api/predict/text", summary="A sentence: probabilities",
              openapi_extra=_multipart_doc("text", False))
    async def predict_text(request: Request):
        need("text")
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            raw = await request.body()   # at most limits.max_body_mb: BodyLimit cuts it off there
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError):   # RecursionError: "[[[[..." nested too deep
                raise BadInput(400, "bad_json", "the JSON body cannot be parsed; send {\"text\": \"...\"}") from None
            text = body.get("text") if isinstance(body, dict) else None
        elif ctype.startswith("application/x-www-form-urlencoded"):
            text = (await read_urlencoded(request, settings.max_text_chars * 4, "limits.max_text_chars")).get("text")
        else:
            form = await read_form(request, settings.max_text_chars * 4, "limits.max_text_chars")
            text = form.fields.get("text")
        if text is None:
            raise BadInput(422, "missing_text", "send the sentence as form field `text`")
        if not isinstance(text, str) or not text.strip():
            raise BadInput(422, "empty_text", "the text is empty; type a sentence")
        if len(text) > settings.max_text_chars:
            raise BadInput(413, "too_long", f"the text has {len(text)} characters, more than this server's "
                           f"cap of {settings.max_text_chars}; send one or a few sentences")
        return await guarded("text", "the text", engine.text, text)

    @app.websocket("/ws/live")
    async def live(ws: WebSocket):
        counts["live_sessions"] += 1
        await LiveSession(ws, engine, infer, settings, counts).run()

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, cap_for=settings.body_cap, counts=counts)
    if settings.token:   # added last: the outermost, so a request without the token is never read
        app.add_middleware(TokenMiddleware, token=settings.token)
    return app


_EXPECTED = {"image": "a JPEG, PNG, WebP, GIF or BMP image",
             "audio": "WAV, FLAC, OGG or MP3 audio (or a video file's audio track)",
             "video": "an MP4, MOV, WebM, MKV, AVI or FLV video"}
