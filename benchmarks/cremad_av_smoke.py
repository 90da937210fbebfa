"""The real CREMA-D clips through the audio-visual path end to end (issue 9, benchmark 3).

A smoke, not an accuracy figure: the six real FLV files (VP6 video + MP3 audio, actor 1001)
are prepared (MTCNN face crops, cached), a `modality=video fusion=attention` model trains for
two epochs on their frames and their own audio tracks, and `emomm.eval` scores the checkpoint.
With one actor there is no speaker-independent split, so the run's folder links each clip
twice, under actor 1001 (train) and a stand-in actor 9001 (val/test): the same clips. The
figures only prove that frames and audio flow through prepare -> train -> eval.
    python -m benchmarks.cremad_av_smoke [--root ../shared/data/cremad_sample]
Writes benchmarks/results/cremad_av_smoke.json.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, run_entry_point, run_training, write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "cremad_sample"))
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    clips = sorted(Path(args.root).glob("1001_*.flv"))
    if not clips:
        sys.exit(f"no CREMA-D FLV clips in {args.root}")
    tmp = Path(tempfile.mkdtemp(prefix="emomm-cremad-av-"))
    data = tmp / "clips"
    data.mkdir()
    for c in clips:
        (data / c.name).symlink_to(c)
        (data / c.name.replace("1001_", "9001_")).symlink_to(c)
    common = ["data=cremad_video", f"data.root={data}", f"faces.cache_dir={tmp / 'faces'}"]
    prep, prep_wall = run_entry_point("emomm.prepare", [*common, "modality=video"], tmp / "logs", "prepare_report.json")
    train = run_training(["modality=video", "fusion=attention", *common, "data.train_speakers=[1001]",
                          "data.val_speakers=[9001]", "data.test_speakers=[]", "data.batch_size=3",
                          "model.encoders.video.backbone=resnet10t", "video.image_size=64",
                          "trainer.max_epochs=2"], tmp / "logs")
    ev, ev_wall = run_entry_point("emomm.eval", [f"ckpt_path={train['best_ckpt']}"], tmp / "logs", "metrics.json")
    ok = (train.get("test_subsets") and set(train["test_subsets"]) == {"video", "voice", "video+voice"}
          and ev.get("test_subsets") is not None and prep["failed"] == 0)
    write_result("cremad_av_smoke", {
        "what": "six real CREMA-D FLV clips: prepare -> modality=video fusion=attention (frames + audio track) "
                "-> eval; train and val/test are the same clips (one actor): no accuracy claim",
        "prepare": {k: prep.get(k) for k in ("clips", "frames", "faces_found", "failed", "time_s")},
        "train_command": train["command"], "data_sizes": train["data_sizes"],
        "train_time_s": train["train_time_s"], "test_subsets_n": {k: v["n"] for k, v in train["test_subsets"].items()},
        "eval_subsets": sorted(ev.get("test_subsets") or {}),
        "eval_wall_s": round(ev_wall, 1), "met": bool(ok)})
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
