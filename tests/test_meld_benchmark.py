"""benchmarks/meld_text.py: a recorded run is never replaced unless asked (RESULTS.md quotes them)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.test_configs import _bench_module

ROOT = Path(__file__).resolve().parents[1]


def test_recorded_clashes_names_the_runs_already_recorded(tmp_path):
    mod = _bench_module("meld_text")
    path = tmp_path / "meld_text.json"
    assert mod.recorded_clashes(path, ["minilm"]) == []  # no file yet
    path.write_text(json.dumps({"runs": {"minilm": {}, "minilm_bf16": {}}}))
    assert mod.recorded_clashes(path, ["minilm_bf16", "minilm_bf16_mine", "minilm"]) == ["minilm_bf16", "minilm"]


def test_a_recorded_variant_is_refused_before_training(tmp_path):
    """The repository's meld_text.json records ``minilm_bf16``: re-running it exits at once with
    the fix, and names the file (the CSV here is empty: reaching training would fail otherwise)."""
    (tmp_path / "train_sent_emo.csv").write_text("")
    r = subprocess.run([sys.executable, "-m", "benchmarks.meld_text", "--root", str(tmp_path), "--variants", "bf16"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode != 0
    assert "already records minilm_bf16" in r.stderr and "--tag" in r.stderr and "--overwrite" in r.stderr
    assert "emomm.train" not in r.stdout  # no training was started
