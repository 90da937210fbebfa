"""A cap on every request body, counted while it is read.

:class:`BodyLimit` is a pure ASGI middleware around the whole app: it wraps ``receive`` and
counts the body bytes of each HTTP request as the server hands them over, whatever the
content type and however the body comes (a ``Content-Length``, chunked, or a length that
lies). A declared length over the cap is answered 413 before a byte is read; a body that
grows past it is cut off there: the app's next ``receive`` raises :class:`BodyTooLarge`,
the underlying ``receive`` is never called again, and the middleware answers 413 in the
app's error JSON (whatever the route made of the exception) with ``Connection: close``,
so the server stops reading the rest instead of buffering it.

The cap depends on the route (``cap_for(path) -> (bytes, setting)``, see
:meth:`emomm.serve.app.ServeSettings.body_cap`): media uploads keep their own
``limits.max_<kind>_mb``; JSON, forms and every other request get ``limits.max_body_mb``.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Callable

from emomm.serve.errors import BadInput


class BodyTooLarge(Exception):
    """Raised by the capped ``receive`` once a body passes its cap (also on every later call)."""


def too_large(cap: int, setting: str = "limits") -> BadInput:
    """The 413 for a body over ``cap`` bytes; ``setting`` names the option that raises it."""
    return BadInput(413, "too_large", f"the request is larger than this server's cap of {cap / 1e6:.2f} MB "
                    f"for this endpoint; send a shorter or smaller file or text (or restart the server "
                    f"with a larger {setting}=...)")


def declared_length(scope) -> int | None:
    """The request's ``Content-Length`` as a number, None when absent or not a number."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class BodyLimit:
    """Args:
        app: the ASGI app.
        cap_for: ``path -> (cap in bytes, setting name)`` for each request.
        counts: the app's request counter (a refusal counts as ``error_413``).
    """

    def __init__(self, app, cap_for: Callable[[str], tuple[int, str]], counts: Counter | None = None) -> None:
        self.app, self.cap_for, self.counts = app, cap_for, counts if counts is not None else Counter()

    async def refuse(self, send, cap: int, setting: str) -> None:
        self.counts["error_413"] += 1
        body = json.dumps(too_large(cap, setting).to_dict()).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cap, setting = self.cap_for(scope.get("path", ""))
        declared = declared_length(scope)
        if declared is not None and declared > cap:
            return await self.refuse(send, cap, setting)   # not a byte read
        received, over, started = 0, False, False

        async def capped_receive():
            nonlocal received, over
            if over:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    over = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message):
            nonlocal started
            if over and not started:
                return   # whatever the route answered after the cut, the answer is the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except BodyTooLarge:
            if started:   # the route had answered before reading on: nothing left to say
                return
        if over and not started:
            await self.refuse(send, cap, setting)
