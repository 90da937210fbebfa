"""The one error type the app turns into a 4xx JSON answer, and what a client may read in it."""
from __future__ import annotations

import re

#: Name prefix of the server's temporary copies of uploads (:func:`emomm.serve.decode.video_path`).
TEMP_PREFIX = "emomm-serve-"

#: An absolute path (``/a/b``, ``~/a/b``, ``C:\a\b``) of two parts or more, not inside a word
#: or a URL; group 1 is its last part.
_PATH = re.compile(r"(?<![\w.~/\\:-])(?:~|[A-Za-z]:)?[\\/](?:[^\s'\"`<>|\\/]+[\\/])+([^\s'\"`<>|\\/:,;)\]]*)")
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"\w+(?:\.\w+)?")


def public(text: str, path: str | None = None, name: str = "the upload") -> str:
    """``text`` fit for a client: ``path``, the server's temporary copy of the upload called
    ``name``, named ``name`` (so is any other temporary upload file), and any other absolute
    path shortened to its last part (the server's folders are none of a client's business)."""
    if path:
        text = text.replace(str(path), name)
    text = _PATH.sub(lambda m: m.group(1) or "...", text)
    return _TEMP_NAME.sub(name, text)


class BadInput(Exception):
    """A request the server refuses: ``status`` (4xx), a stable ``code`` for programs and a
    ``message`` for people that says what was wrong and how to fix it (never a server path:
    see :func:`public`)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        message = public(message)
        super().__init__(message)
        self.status, self.code, self.message = int(status), code, message

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}
