"""The one error type the app turns into a 4xx JSON answer."""
from __future__ import annotations


class BadInput(Exception):
    """A request the server refuses: ``status`` (4xx), a stable ``code`` for programs and a
    ``message`` for people that says what was wrong and how to fix it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = int(status), code, message

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}
