"""``python -m emomm.serve [ckpt_path=PATH] [host=127.0.0.1 port=8000 token=...]``.

Without ``ckpt_path`` it serves the zoo's default (the face-voice bundle when built, else
``zoo:face-fer2013``) and says which; ``backend=auto`` (the default) runs the model on ONNX
Runtime through a cached, parity-checked export when it can.

Binds to loopback unless ``host=`` says otherwise; any other host gets an access token
(``token=``, or a random one printed with the link to open).
"""
from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from emomm.serve.app import ServeSettings, create_app
from emomm.serve.auth import resolve_token
from emomm.serve.engine import ServeEngine
from emomm.utils.runtime import (CONFIG_DIR, offline_defaults, private_library_caches, resolve_ckpts,
                                 set_compute_threads, to_plain)
from emomm.utils.safe_load import exit_on_checkpoint_error

log = logging.getLogger("emomm.serve")


def build(cfg: DictConfig):
    """(app, url) for ``cfg``: the engine loaded, the token resolved."""
    from emomm.zoo import default_checkpoint   # (imports Lightning: see ServeEngine.from_checkpoint)

    ckpt_path, said = default_checkpoint(cfg.ckpt_path)
    if said:
        print(f"emomm serve: {said}", flush=True)
    ckpt = resolve_ckpts(ckpt_path, cfg.paths.log_dir, cfg.backend)
    token = resolve_token(str(cfg.host), cfg.get("token"))
    settings = ServeSettings(max_image_mb=cfg.limits.max_image_mb, max_audio_mb=cfg.limits.max_audio_mb,
                             max_video_mb=cfg.limits.max_video_mb, max_text_chars=cfg.limits.max_text_chars,
                             max_body_mb=cfg.limits.max_body_mb,
                             workers=cfg.workers, token=token, live_max_fps=cfg.live_max_fps)
    engine = ServeEngine.from_checkpoint(ckpt, device=cfg.device, backend=cfg.backend,
                                         **(to_plain(cfg.get("predictor")) or {}))
    host = f"[{cfg.host}]" if ":" in str(cfg.host) else cfg.host
    url = f"http://{host}:{cfg.port}/" + (f"?token={token}" if token else "")
    return create_app(engine, settings), url, ckpt


def serve(cfg: DictConfig) -> None:
    import uvicorn   # the server library (the serve extra), loaded only to serve

    with private_library_caches():
        app, url, ckpt = build(cfg)
    engine = app.state.engine
    print(f"emomm serve: {engine.checkpoint_name} ({', '.join(engine.modalities)}) on "
          f"{getattr(engine.predictor, 'backend_note', engine.backend)} - open {url}", flush=True)
    # access_log off: request lines carry paths and query strings (tokens); the app keeps counts only.
    uvicorn.run(app, host=str(cfg.host), port=int(cfg.port), access_log=False, log_level=cfg.log_level,
                ws_max_size=8 * 1024 * 1024)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="serve")
def main(cfg: DictConfig) -> None:
    offline_defaults()
    set_compute_threads(cfg.get("threads"))
    with exit_on_checkpoint_error():
        serve(cfg)


if __name__ == "__main__":
    main()
