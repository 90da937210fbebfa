"""CREMA-D's audio-visual path end to end: prepare -> train (frames + their own sound track) -> eval.

Was ``benchmarks/cremad_av_smoke.py`` (a smoke on the six real FLV clips, no figure): here on
generated clips in the dataset's real format (``<actor>_<sentence>_<EMO>_<level>.flv``, video
and an audio track in one file), so it runs anywhere.
"""
from __future__ import annotations

import numpy as np
import pytest

from emomm.eval import evaluate
from emomm.prepare import prepare
from emomm.train import train
from tests.test_faces import face_clip
from tests.test_multimodal_data import TONES, _tone

ACTORS = {"train": 1001, "val": 1002, "test": 1003}


@pytest.mark.slow
def test_cremad_av_prepare_train_eval(cfg_factory, tmp_path):
    root = tmp_path / "VideoFlash"
    for actor in ACTORS.values():
        for emo, hz in TONES.items():
            face_clip(root / f"{actor}_IEO_{emo}_HI.flv", n=6, audio=_tone(hz + actor % 7, seconds=0.6))
    data = ["data=cremad_video", f"data.root={tmp_path}", f"faces.cache_dir={tmp_path / 'faces'}",
            "faces.detector=haar", "faces.workers=0", "faces.progress=false", "video.sampling.num_frames=4"]
    report = prepare(cfg_factory([*data, "modality=video"], config_name="prepare", subdir="prepare"))
    assert report["clips"] == 9 and report["failed"] == 0 and report["clips_no_face"] == 0

    summary = train(cfg_factory(["modality=video", "fusion=attention", *data,
                                 *(f"data.{s}_speakers=[{a}]" for s, a in ACTORS.items()),
                                 "++data.allow_missing_classes=true",      # angry, happy, sad only
                                 "data.batch_size=3", "model.encoders.video.backbone=resnet10t",
                                 "model.encoders.video.hidden_size=32", "model.encoders.video.num_layers=1",
                                 "video.image_size=32", "video.num_frames=4", "trainer.max_epochs=2"],
                                subdir="train"))
    assert summary["data_sizes"] == {"train": 3, "val": 3, "test": 3}
    assert set(summary["test_modalities"]) == {"video", "voice"}    # frames and the file's own audio
    assert set(summary["test_subsets"]) == {"video", "voice", "video+voice"}
    assert all(s["n"] == 3 for s in summary["test_subsets"].values())

    ev = evaluate(cfg_factory([f"ckpt_path={summary['best_ckpt']}"], config_name="eval", subdir="eval"))
    assert set(ev["test_subsets"]) == {"video", "voice", "video+voice"}
    assert np.isfinite(ev["metrics"]["uar"]) and 0 <= ev["metrics"]["acc"] <= 1
