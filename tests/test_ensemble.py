"""How `emomm.ensemble` names its members (the keys of metrics.json's ``test_models`` and the
rows of ensemble.csv)."""
from pathlib import Path

from emomm.runs.ensembling import member_names


def ckpt(*parts: str) -> Path:
    return Path("/runs", *parts, "checkpoints", "best.ckpt")


def test_seed_runs_are_named_by_seed_and_time_not_by_time_alone():
    a = ckpt("aux", "seed_1", "train", "runs", "2026-12-06_04-56-00")
    b = ckpt("aux", "seed_2", "train", "runs", "2026-12-06_04-56-01")
    assert member_names([a, b]) == ["seed_1/2026-12-06_04-56-00", "seed_2/2026-12-06_04-56-01"]


def test_run_folders_given_by_name_keep_their_names():
    assert member_names([ckpt("face"), ckpt("voice")]) == ["face", "voice"]


def test_best_and_last_of_one_run():
    run = Path("/runs/face/checkpoints")
    assert member_names([run / "best.ckpt", run / "last.ckpt"]) == ["best", "last"]


def test_paths_of_different_depth_drop_the_common_leading_and_trailing_parts():
    assert member_names([ckpt("a", "face"), ckpt("b", "x", "voice")]) == ["a/face", "b/x/voice"]


def test_the_same_checkpoint_twice_gets_two_names():
    assert member_names([ckpt("face"), ckpt("face")]) == ["face", "face_2"]
