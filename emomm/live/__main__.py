"""``python -m emomm.live [ckpt_path=...] source=... audio=... [output=...] [jsonl=...]``.

Without ``ckpt_path`` it runs the zoo's default (the face-voice bundle when built, else
``zoo:face-fer2013``) and says which; ``backend=auto`` (the default) runs the classifier on
ONNX Runtime through a cached, parity-checked export when it can, and says so."""
from __future__ import annotations

import json
import sys

import hydra
from omegaconf import DictConfig

from emomm.faces.detectors import detector_from_config
from emomm.live.stream import LivePipeline
from emomm.live.voice_input import LiveInputError, VoiceWindow, open_audio
from emomm.media.audio import AudioReadError
from emomm.media.images import ImageReadError
from emomm.media.video import VideoReadError
from emomm.utils.runtime import CONFIG_DIR, offline_defaults, private_library_caches, set_compute_threads, to_plain
from emomm.utils.safe_load import exit_on_checkpoint_error


def build(cfg: DictConfig):
    """``(pipeline, audio source)`` from the composed config."""
    # Imported here, not above: the model loader imports Lightning, whose import writes
    # matplotlib's font cache under $HOME; main calls build inside private_library_caches,
    # so live mode stores nothing there (tests/test_live.py checks an empty $HOME).
    from emomm.live.model_loader import load_classifier
    from emomm.zoo import default_checkpoint

    ckpt_path, said = default_checkpoint(cfg.ckpt_path)
    if said:
        print(f"emomm live: {said}", file=sys.stderr, flush=True)
    clf = load_classifier(ckpt_path, backend=cfg.backend, device=cfg.device, precision=cfg.precision,
                          log_dir=cfg.paths.log_dir)
    print(f"emomm live: classifier on {getattr(clf, 'backend_note', cfg.backend)}", file=sys.stderr, flush=True)
    faces = to_plain(cfg.faces)
    detector = detector_from_config(faces["detector"], faces)
    pipeline = to_plain(cfg.pipeline)
    fallback = pipeline.pop("fallback", None)
    if fallback and fallback != faces["detector"]:
        pipeline["fallback"] = detector_from_config(fallback, faces)
    audio = open_audio(cfg.audio)
    voice = VoiceWindow(**to_plain(cfg.voice)) if audio is not None else None
    return LivePipeline(clf, detector, voice=voice, **pipeline), audio


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="live")
def main(cfg: DictConfig) -> dict:
    offline_defaults()
    set_compute_threads(cfg.threads)
    # Errors that name the bad source, file or device and the fix: one line, exit 1.
    with exit_on_checkpoint_error(LiveInputError, AudioReadError, ImageReadError, VideoReadError, FileNotFoundError):
        with private_library_caches():
            pipeline, audio = build(cfg)
        summary = pipeline.run(cfg.source, audio=audio, output=cfg.output, jsonl=cfg.jsonl,
                               display=cfg.display, max_frames=cfg.max_frames)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
