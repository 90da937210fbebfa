"""How `emomm.ensemble` names its members (the keys of metrics.json's ``test_models`` and the
rows of ensemble.csv), and how it combines members that lack their input for some samples."""
from pathlib import Path

import numpy as np
import torch

from emomm.models.ensemble_methods import combine, dropped, fill_absent, member_present
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


def test_a_member_without_its_input_is_left_out_of_that_samples_ensemble():
    """Per sample, a member whose modality is absent (a face without a mesh, for a landmark
    model) does not vote: the others answer there, renormalised, whichever method combines them."""
    probs = torch.rand(2, 4, 3, generator=torch.Generator().manual_seed(0)).softmax(-1)   # [M, N, K]
    labels = torch.tensor([0, 1, 2, 0])
    present = torch.tensor([[True, True, False, True], [True, False, False, False]])
    mean, _ = combine("mean", probs, labels, probs, present, present)
    assert torch.equal(mean[[1, 3]], probs[0, [1, 3]])                  # member 1 absent: member 0 alone
    torch.testing.assert_close(mean[[0, 2]], probs[:, [0, 2]].mean(0))  # both, or neither: their mean
    weighted, fitted = combine("weighted", probs, labels, probs, present, present)
    assert torch.equal(weighted[[1, 3]], probs[0, [1, 3]]) and len(fitted["weights"]) == 2
    assert torch.equal(fill_absent(probs, present)[1, [1, 3]], probs[0, [1, 3]])
    assert combine("stacking", probs, labels, probs, present, present)[0].shape == (4, 3)
    assert dropped(present) == [0, 2]
    # which samples have a member's input: any modality it reads, a modality without a mask present
    masks = {"face": np.array([True, False, False]), "landmarks": torch.tensor([False, True, False])}
    assert member_present(masks, ["face", "landmarks"], 3).tolist() == [True, True, False]
    assert member_present(masks, ["voice"], 3).tolist() == [True, True, True]
