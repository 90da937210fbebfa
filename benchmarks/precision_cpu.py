"""Training step time of the FER2013 CPU recipe's network in fp32 and in bf16 autocast.

    python -m benchmarks.precision_cpu [--steps 6] [--bf16-steps 3] [--threads 2] [--rounds 1] [--name precision_cpu]

The recipe (experiment=fer2013_cpu) was tuned on CPUs with AVX512-BF16, where bf16-mixed
is the faster mode; on a CPU without native bf16 oneDNN emulates it. This measures both on
the machine at hand: ResNet-18 without its stem max-pool (the recipe's ``stem_pool: false``),
1 x 40 x 40 inputs, batch 128, SGD, eager (no compile), NCHW and channels-last, the first
step not counted (warm-up). Each mode runs in its own process (``--rounds`` interleaves them).
Writes benchmarks/results/<name>.json (default precision_cpu), one entry per CPU (``machine.cpu_id``), keeping
the entries of other CPUs. Run it alone on the machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from benchmarks.common import RESULTS, machine, write_result


def step_times(bf16: bool, steps: int, channels_last: bool = False) -> list[float]:
    """Seconds per training step (forward, backward, SGD update) for ``steps`` steps."""
    import timm
    import torch
    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=7, in_chans=1)
    model.maxpool = torch.nn.Identity()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(128, 1, 40, 40), torch.randint(0, 7, (128,))
    if channels_last:  # NHWC: oneDNN's native conv layout, no reorders between layers
        model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - start)
    return times


MODES = {"fp32": (False, False), "fp32_channels_last": (False, True),
         "bf16_autocast": (True, False), "bf16_autocast_channels_last": (True, True)}


def one_process(mode: str, steps: int, threads: int) -> list[float]:
    """``mode``'s step times measured in a fresh interpreter, as a training run meets them
    (in one process, a mode measured after others ran slower: oneDNN's caches and the
    allocator carry state from one mode to the next)."""
    out = subprocess.run([sys.executable, __file__, "--one", mode, "--steps", str(steps), "--threads", str(threads)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6, help="fp32 steps (the first is warm-up)")
    ap.add_argument("--bf16-steps", type=int, default=3, help="bf16 steps (slow where emulated)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="each round runs every mode once, each in its own process")
    ap.add_argument("--name", default="precision_cpu", help="result file (entries of other CPUs are kept; "
                    "this CPU's is replaced, so give a new name to keep an earlier measurement)")
    ap.add_argument("--one", choices=list(MODES), help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    if args.one:
        bf16, channels_last = MODES[args.one]
        print(json.dumps(step_times(bf16, max(args.steps, 2), channels_last)))
        return
    entry: dict = {"threads": args.threads, "batch": 128, "input": [1, 40, 40], "rounds": args.rounds,
                   "note": "each mode in its own process, modes interleaved round by round"}
    for r in range(args.rounds):
        for name, (bf16, _) in MODES.items():
            times = one_process(name, args.bf16_steps if bf16 else args.steps, args.threads)
            rec = entry.setdefault(name, {"step_s": [], "round_medians_s": []})
            rec["step_s"].append([round(t, 3) for t in times])
            rec["round_medians_s"].append(round(statistics.median(times[1:]), 3))
            print(f"round {r + 1} {name}: {rec['round_medians_s'][-1]} s", flush=True)
    for name in MODES:
        entry[name]["median_after_first_s"] = round(statistics.median(entry[name]["round_medians_s"]), 3)
    entry["bf16_over_fp32"] = round(entry["bf16_autocast"]["median_after_first_s"] / entry["fp32"]["median_after_first_s"], 2)
    entry["machine"] = machine()
    path = RESULTS / f"{args.name}.json"
    by_cpu = json.loads(path.read_text()).get("by_cpu", {}) if path.is_file() else {}
    by_cpu[entry["machine"]["cpu_id"] or entry["machine"]["cpu"]] = entry
    write_result(args.name, {"by_cpu": by_cpu})


if __name__ == "__main__":
    main()
