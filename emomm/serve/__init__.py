"""The web app: ``python -m emomm.serve ckpt_path=...`` (or ``emomm-serve``).

* :mod:`.app` - the FastAPI app (page, JSON API, live WebSocket);
* :mod:`.engine` - the Predictor behind it, answering in the page's JSON;
* :mod:`.live` - the live camera/microphone session (newest frame only);
* :mod:`.uploads`, :mod:`.sniff`, :mod:`.decode` - in-memory uploads, capped, typed from their bytes;
* :mod:`.auth` - the access token for non-loopback hosts.
"""
from emomm.serve.app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
