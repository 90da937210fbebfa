"""Access token for a server reachable beyond loopback, checked on every request and WebSocket.

A pure ASGI middleware, so HTTP routes, static files, the OpenAPI page and WebSocket
handshakes all pass through the same check. The token is accepted as
``Authorization: Bearer T``, header ``X-Emomm-Token``, query ``?token=T`` (how a person opens
the page from the printed link) or the ``emomm_token`` cookie, which the page sets for
itself after a query-token visit so its own fetches and WebSocket carry it.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

COOKIE = "emomm_token"


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> str | None:
    """The token the server needs: None on loopback without one, the given one, or a new
    random one for any other host (a non-loopback server is never open)."""
    if token:
        return str(token)
    return None if is_loopback(host) else secrets.token_urlsafe(18)


def request_token(scope) -> str | None:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if headers.get("x-emomm-token"):
        return headers["x-emomm-token"]
    q = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    if q:
        return q[0]
    if "cookie" in headers:
        c = SimpleCookie()
        try:
            c.load(headers["cookie"])
        except Exception:
            return None
        if COOKIE in c:
            return c[COOKIE].value
    return None


class TokenMiddleware:
    """Refuse (401 JSON, or WebSocket close 4401) anything without the right token."""

    def __init__(self, app, token: str | None) -> None:
        self.app, self.token = app, token

    def ok(self, scope) -> bool:
        given = request_token(scope)
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope, receive, send):
        if self.token is None or scope["type"] not in ("http", "websocket") or self.ok(scope):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            # A close before the accept goes out as an HTTP 403 (uvicorn), which a browser
            # reports as close code 1006 with no reason: accept, then close with 4401, so the
            # page can say "Access token required".
            if (await receive())["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": 4401, "reason": "access token required"})
            return
        body = json.dumps({"error": {"code": "unauthorized", "status": 401, "message":
                                     "this server needs its access token: open the link the server "
                                     "printed (…/?token=…) or send `Authorization: Bearer <token>`"}}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
