"""Multipart uploads read into memory, with a size cap, and never spooled to disk.

Starlette's own form parser spools any part over 1 MB to a temporary file; the app promises
that uploads stay in memory, so it parses the request body itself, streaming, with
python-multipart's callback parser. The cap is checked on the declared ``Content-Length``
(refused before reading) and again on the bytes as they arrive (a client that lies or uses
chunked encoding is cut off at the cap); the app's :class:`~emomm.serve.limits.BodyLimit`
caps every body, of any type, the same way before a route sees it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from emomm.serve.errors import BadInput
from emomm.serve.limits import BodyTooLarge, too_large

#: Multipart headers, boundaries and a short text field on top of the file itself.
OVERHEAD = 64 * 1024


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    filenames: dict[str, str] = field(default_factory=dict)


async def read_form(request: Request, cap: int, setting: str = "limits") -> Form:
    """Parse a ``multipart/form-data`` body of at most ``cap`` bytes (plus headers)."""
    ctype, params = parse_options_header(request.headers.get("content-type"))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise BadInput(415, "not_multipart", "send the upload as multipart/form-data (a form with "
                       "a `file` field, or a `text` field for text)")
    limit = cap + OVERHEAD
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(cap, setting)

    form = Form()
    state: dict = {"name": None, "filename": None, "buf": [], "hfield": b"", "hvalue": b"", "headers": {}}

    def on_part_begin():
        state.update(buf=[], headers={}, name=None, filename=None)

    def on_header_field(data, start, end):
        state["hfield"] += data[start:end]

    def on_header_value(data, start, end):
        state["hvalue"] += data[start:end]

    def on_header_end():
        state["headers"][state["hfield"].lower()] = state["hvalue"]
        state["hfield"], state["hvalue"] = b"", b""

    def on_headers_finished():
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["name"] = disp.get(b"name", b"").decode("utf-8", "replace")
        fn = disp.get(b"filename")
        state["filename"] = fn.decode("utf-8", "replace") if fn is not None else None

    def on_part_data(data, start, end):
        state["buf"].append(bytes(data[start:end]))

    def on_part_end():
        body = b"".join(state["buf"])
        name = state["name"] or ""
        if state["filename"] is not None:
            form.files[name] = body
            form.filenames[name] = state["filename"]
        else:
            form.fields[name] = body.decode("utf-8", "replace")
        state["buf"] = []

    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end})
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise too_large(cap, setting)
            parser.write(chunk)
        parser.finalize()
    except (BadInput, BodyTooLarge):
        raise
    except Exception as err:  # python-multipart raises its own errors on malformed bodies
        raise BadInput(400, "bad_multipart", f"the multipart body cannot be parsed ({err}); send "
                       "a normal form upload") from None
    for name, data in form.files.items():
        if len(data) > cap:
            raise too_large(cap, setting)
    return form


async def read_urlencoded(request: Request, cap: int, setting: str = "limits") -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body of at most ``cap`` bytes, first values."""
    from urllib.parse import parse_qs

    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap + OVERHEAD:
            raise too_large(cap, setting)
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
