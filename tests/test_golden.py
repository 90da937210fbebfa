"""Behaviour did not change: the seeded runs, predictions and ``make demo`` recorded in
tests/golden/ (``python -m tests.golden.record``, before issue 43's redesign) come out the same.

Bit for bit where this machine's fingerprint (CPU model, torch, threads) is the recorded one;
elsewhere within a relative 1e-5, and the assertion says which comparison was made. A change
that is meant to alter numbers re-records the golden files (and says so in its commit)."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.golden.record import (CASES, exact, fingerprint, golden_path, legacy_checkpoint, predictions, run_demo,
                                 run_case)

REL = 1e-5
ABS = 1e-7  # for values that are ~0 (a probability of 1e-9 may move by more than 1e-5 of itself)
RUN_KEYS = ("metrics", "logged", "weights", "predictions")


def golden(name: str) -> dict[str, Any]:
    path = golden_path(name)
    assert path.is_file(), f"{path} is missing: record it with python -m tests.golden.record"
    return json.loads(path.read_text())


def as_float(v: Any) -> float | None:
    """A recorded ``float.hex()`` string as a float; None for anything else."""
    if isinstance(v, str) and (v.lstrip("-").startswith("0x") or v in ("inf", "-inf", "nan")):
        return float.fromhex(v)
    return None


def differences(old: Any, new: Any, exactly: bool, path: str = "") -> list[str]:
    """Where ``new`` differs from ``old`` (both encoded by :func:`exact`): every difference
    when ``exactly``, else numbers beyond ``REL``/``ABS`` and any other difference."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = [f"{path}/{k}: only in the {'recorded' if k in old else 'new'} output"
               for k in sorted(set(old) ^ set(new))]
        for k in sorted(set(old) & set(new)):
            out += differences(old[k], new[k], exactly, f"{path}/{k}")
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{path}: {len(old)} items recorded, {len(new)} now"]
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, exactly, f"{path}[{i}]")]
    a, b = as_float(old), as_float(new)
    if a is not None and b is not None and not exactly:
        same = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=REL, abs_tol=ABS)
        return [] if same else [f"{path}: recorded {a!r}, now {b!r}"]
    if old != new:
        shown = (a, b) if a is not None and b is not None else (old, new)
        return [f"{path}: recorded {shown[0]!r}, now {shown[1]!r}"]
    return []


def same_machine(recorded: dict[str, Any], here: dict[str, Any]) -> bool:
    keys = ("cpu", "machine", "torch", "threads")
    return all(recorded.get(k) == here.get(k) for k in keys)


def assert_same(old: dict[str, Any], new: dict[str, Any], keys: tuple[str, ...], recorded_fp: dict[str, Any],
                here_fp: dict[str, Any], what: str) -> None:
    exactly = same_machine(recorded_fp, here_fp)
    old, new = copy.deepcopy({k: old[k] for k in keys}), copy.deepcopy({k: new[k] for k in keys})
    if not exactly and "weights" in keys:  # the digest needs the same bits: compare the sums instead
        for w in (old["weights"], new["weights"]):
            w.pop("sha256")
    diffs = differences(old, new, exactly)
    how = ("bit for bit (same machine fingerprint)" if exactly else
           f"within rel {REL} (fingerprint differs: recorded {recorded_fp}, here {here_fp})")
    assert not diffs, (f"{what} changed, compared {how}; {len(diffs)} differences, first ones:\n  "
                       + "\n  ".join(diffs[:15]))


@pytest.fixture(scope="module")
def rerun(tmp_path_factory):
    """Each case trained once per session (one thread), on demand."""
    done: dict[str, dict[str, Any]] = {}
    threads = torch.get_num_threads()

    def get(name: str) -> dict[str, Any]:
        if name not in done:
            torch.set_num_threads(1)
            try:
                rec = run_case(name, tmp_path_factory.mktemp(f"golden-{name}"))
                done[name] = {**rec, "fingerprint": fingerprint()}
            finally:
                torch.set_num_threads(threads)
        return done[name]
    return get


@pytest.mark.parametrize("case", list(CASES))
def test_seeded_run_gives_the_recorded_metrics_weights_and_predictions(case, rerun):
    old, new = golden(case), rerun(case)
    assert old["overrides"] == new["overrides"], f"case {case!r}'s overrides differ from the recorded run's"
    assert_same(old, new, RUN_KEYS, old["fingerprint"], new["fingerprint"], f"golden case {case!r}")


@pytest.mark.parametrize("case", list(CASES))
def test_checkpoint_written_before_the_move_predicts_the_same(case, rerun, tmp_path):
    """Today's weights with the ``hyper_parameters`` a checkpoint held before the redesign
    (old ``_target_`` paths and arguments) load through the Predictor and predict as recorded."""
    old, new = golden(case), rerun(case)
    ckpt = legacy_checkpoint(Path(new["ckpt"]), old["hparams"], tmp_path / "before-the-move.ckpt")
    with torch.no_grad():
        got = {"predictions": predictions(ckpt)}
    assert_same(old, got, ("predictions",), old["fingerprint"], new["fingerprint"],
                f"golden case {case!r} loaded from a checkpoint with the recorded hparams")


def test_exact_encoding_round_trips_and_differences_are_found():
    """The comparison itself can fail: a last-bit change is a difference bit for bit only."""
    x = 0.1 + 0.2
    enc = exact({"a": [x, 1, "s"], "b": torch.tensor([0.5])})
    assert as_float(enc["a"][0]) == x and enc["a"][1:] == [1, "s"] and as_float(enc["b"][0]) == 0.5
    moved = exact({"a": [math.nextafter(x, 1.0), 1, "s"], "b": torch.tensor([0.5])})
    assert differences(enc, moved, exactly=True) and not differences(enc, moved, exactly=False)
    assert differences(enc, exact({"a": [x * 1.001, 1, "s"], "b": [0.5]}), exactly=False)
    assert differences(enc, exact({"a": [x, 1], "b": [0.5]}), exactly=False) == ["/a: 3 items recorded, 2 now"]


@pytest.mark.slow
def test_make_demo_gives_the_recorded_metrics(tmp_path):
    old = golden("demo")
    new = run_demo(tmp_path / "demo")
    assert_same(old, new, ("metrics",), old["fingerprint"], {**fingerprint(), "threads": 1}, "make demo")
