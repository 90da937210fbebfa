"""benchmarks/ravdess_ablation.py: which runs it trains, and how many side by side."""
from __future__ import annotations

import threading
import time

from tests.test_configs import _bench_module


def test_variants_run_side_by_side_not_only_seeds(tmp_path, monkeypatch):
    """``--only a b --seeds 3 --parallel 2`` trains a and b at once (it once ran the variants one
    after the other, so a pair planned for one recipe length took two)."""
    mod = _bench_module("ravdess_ablation")
    calls, running, peak, lock = [], [0], [0], threading.Lock()

    def fake_run_seeds(overrides, seeds, parallel, log_root, threads=1):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            calls.append((overrides, seeds, log_root.name))
        time.sleep(0.3)
        with lock:
            running[0] -= 1
        return [{"seed": s, "overrides": overrides} for s in seeds]

    monkeypatch.setattr(mod, "run_seeds", fake_run_seeds)
    ends = {"head": ["experiment=ravdess_voice"], "tail": ["debug=limit"]}
    out = mod.train_variants(["aux_both_w0.15", "aux_both_w0.6"], [3], 2, tmp_path, 1, **ends)
    assert peak[0] == 2 and len(calls) == 2
    assert [r["seed"] for r in out["aux_both_w0.6"]] == [3]
    run = out["aux_both_w0.6"][0]["overrides"]
    # the recipe, the variant's config (what it sets: tests/test_benchmarks.py), the user's overrides
    assert run == ["experiment=ravdess_voice", "+ablation=ravdess/aux_both_w0.6", "debug=limit"]
    # one at a time when asked, and every (variant, seed) pair once
    calls.clear()
    peak[0] = 0
    out = mod.train_variants(["baseline", "vtlp"], [1, 2], 1, tmp_path, 1, **ends)
    assert peak[0] == 1 and sorted((c[2], c[1][0]) for c in calls) == [("baseline", 1), ("baseline", 2),
                                                                     ("vtlp", 1), ("vtlp", 2)]
    assert "+ablation=ravdess/baseline" in out["baseline"][0]["overrides"]   # the single-task recipe
