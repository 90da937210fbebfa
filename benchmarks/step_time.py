"""Training step time, by task: one encoder's forward + backward + optimizer step, timed.

    python -m benchmarks.step_time face  [--steps 6] [--bf16-steps 3] [--threads 2] [--rounds 1] [--name precision_cpu]
    python -m benchmarks.step_time voice [--rounds 6] [--steps 4] [--threads 1] [--name voice_step] [--overwrite]
    python -m benchmarks.step_time text  [--root data/meld] [--rounds 3] [--steps 3] [--threads 2]
                                         [--name text_step] [--overwrite]

``face``: the FER2013 recipe's network in fp32 and bf16 autocast, NCHW and NHWC (result
``precision_cpu``). ``voice``: the RAVDESS voice encoders by memory layout and precision
(``voice_step``). ``text``: the MELD text encoders by precision (``text_step``).

face: The recipe (experiment=fer2013_cpu) was tuned on CPUs with AVX512-BF16, where bf16-mixed
is the faster mode; on a CPU without native bf16 oneDNN emulates it. This measures both on
the machine at hand: ResNet-18 without its stem max-pool (the recipe's ``stem_pool: false``),
1 x 40 x 40 inputs, batch 128, SGD, eager (no compile), NCHW and channels-last, the first
step not counted (warm-up). Each mode runs in its own process (``--rounds`` interleaves them).
Writes benchmarks/results/<name>.json (default precision_cpu), one entry per CPU (``machine.cpu_id``), keeping
the entries of other CPUs. Run it alone on the machine.

voice: Builds the encoders exactly as ``experiment=ravdess_voice`` (the log-mel CNN-BiLSTM) and
``experiment=ravdess_ge2e`` (the pretrained GE2E LSTM; needs ``make models``) compose them, plus
a linear head, and times forward + backward + AdamW on one fixed batch of 32 random waveforms
of 1.5-3 s (the recipe's batch and crop; the data loading is not counted). The variants run
in interleaved rounds (each round: ``--steps`` steps of every variant, the first step of each
variant's first round dropped as warm-up), so a drift in the machine's speed hits all alike.
Writes benchmarks/results/<name>.json (an existing one only with --overwrite). Run it alone
on the machine.

text: Builds each encoder as ``experiment=meld_text`` composes it (``model/text_encoder=mpnet`` for
MPNet, which needs ``make models``; ``finetune=4``: only its last 4 layers train), plus a
linear head, and times forward + backward + AdamW on one fixed batch: 32 consecutive
utterances of MELD's train split with their 2 past turns, as the recipe reads them (not
length-bucketed, so longer than the recipe's average batch; data loading not counted). The
variants run in interleaved rounds (``common.interleaved_step_times``). Writes
benchmarks/results/<name>.json (an existing one only with --overwrite). Run it alone on the
machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import (DATA_DIR, RESULTS, ROOT, interleaved_step_times, machine, refuse_to_overwrite, step_time_parser,
                               write_result)


# -- face: the FER2013 recipe's ResNet-18, each mode in its own process ------------------------------
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
    out = subprocess.run([sys.executable, "-m", "benchmarks.step_time", "face", "--one", mode, "--steps", str(steps),
                          "--threads", str(threads)], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def face_main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.step_time face", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6, help="fp32 steps (the first is warm-up)")
    ap.add_argument("--bf16-steps", type=int, default=3, help="bf16 steps (slow where emulated)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="each round runs every mode once, each in its own process")
    ap.add_argument("--name", default="precision_cpu", help="result file (entries of other CPUs are kept; "
                    "this CPU's is replaced, so give a new name to keep an earlier measurement)")
    ap.add_argument("--one", choices=list(MODES), help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args(argv)
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


# -- voice: the RAVDESS encoders --------------------------------------------------------------------
#: name -> (experiment, encoder overrides, bf16 autocast)
VOICE_VARIANTS = {
    "cnn_nchw_fp32": ("ravdess_voice", ["model.encoders.voice.channels_last=false"], False),
    "cnn_nhwc_fp32": ("ravdess_voice", ["model.encoders.voice.channels_last=true"], False),
    "cnn_nhwc_bf16": ("ravdess_voice", ["model.encoders.voice.channels_last=true"], True),
    "ge2e_fp32": ("ravdess_ge2e", [], False),
    "ge2e_bf16": ("ravdess_ge2e", [], True),
}


def build_encoder(experiment: str, overrides: list[str], modality: str, classes: int):
    """``(encoder, linear head, AdamW over what trains, composed config)`` of the recipe's
    ``modality`` encoder with ``overrides``."""
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from emomm.utils.runtime import CONFIG_DIR
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        cfg = compose("train", overrides=[f"experiment={experiment}", *overrides])
    torch.manual_seed(0)
    encoder = instantiate(cfg.model.encoders[modality], _convert_="all").train()
    head = torch.nn.Linear(encoder.out_dim, classes)
    opt = torch.optim.AdamW([p for p in [*encoder.parameters(), *head.parameters()] if p.requires_grad], lr=1e-4)
    return encoder, head, opt, cfg


def training_step(forward, head, opt, labels, bf16: bool):
    """One optimizer step of ``head(forward())`` against ``labels`` (bf16 autocast or not)."""
    import torch

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(head(forward()).float(), labels)
        loss.backward()
        opt.step()
        opt.zero_grad()
    return step


def voice_main(argv: list[str]) -> None:
    args = step_time_parser("python -m benchmarks.step_time voice", __doc__, list(VOICE_VARIANTS), "voice_step",
                            rounds=6, steps=4, threads=1).parse_args(argv)
    refuse_to_overwrite(args.name, args.overwrite)
    import torch
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(24000, 48001, (32,), generator=g)
    wave = torch.randn(32, 48000, generator=g) * 0.05
    labels = torch.randint(0, 8, (32,), generator=g)

    def step_of(name: str):
        experiment, overrides, bf16 = VOICE_VARIANTS[name]
        encoder, head, opt, _ = build_encoder(experiment, overrides, "voice", 8)
        return training_step(lambda: encoder(wave, lengths), head, opt, labels, bf16)

    times = interleaved_step_times({name: step_of(name) for name in args.variants}, args.rounds, args.steps)
    entry = {name: {"experiment": VOICE_VARIANTS[name][0], "overrides": VOICE_VARIANTS[name][1],
                    "bf16_autocast": VOICE_VARIANTS[name][2],
                    "median_step_s": round(statistics.median(t), 3), "step_s": [round(x, 3) for x in t]}
             for name, t in times.items()}
    write_result(args.name, {"threads": args.threads, "batch": 32, "seconds": [1.5, 3.0],
                                "rounds": args.rounds, "steps_per_round": args.steps, "variants": entry})


# -- text: the MELD encoders ------------------------------------------------------------------------
#: name -> (overrides of experiment=meld_text, bf16 autocast)
TEXT_VARIANTS = {
    "minilm_fp32": ([], False),
    "minilm_bf16": ([], True),
    "mpnet_fp32": (["model/text_encoder=mpnet"], False),
    "mpnet_bf16": (["model/text_encoder=mpnet"], True),
    "mpnet_last4_bf16": (["model/text_encoder=mpnet", "model.encoders.text.finetune=4"], True),
}
FIRST = 1000  # the batch: train rows FIRST .. FIRST+31 (past the first dialogues' short openings)


def text_main(argv: list[str]) -> None:
    ap = step_time_parser("python -m benchmarks.step_time text", __doc__, list(TEXT_VARIANTS), "text_step",
                          rounds=3, steps=3, threads=2)
    ap.add_argument("--root", default=str(DATA_DIR / "meld"))
    args = ap.parse_args(argv)
    csv = Path(args.root) / "train_sent_emo.csv"
    if not csv.is_file():
        sys.exit(f"MELD not found at {args.root} (no train_sent_emo.csv); pass --root PATH")
    refuse_to_overwrite(args.name, args.overwrite)
    import torch

    from emomm.data.datasets.meld import read_meld_csv
    torch.set_num_threads(args.threads)
    labels = torch.zeros(32, dtype=torch.long)

    def step_of(name: str):
        overrides, bf16 = TEXT_VARIANTS[name]
        encoder, head, opt, cfg = build_encoder("meld_text", overrides, "text", 7)
        rows = read_meld_csv(csv, context_turns=int(cfg.text.context_turns), speakers=False)
        batch = [{"text": t, "context": c} for t, c in
                 zip(rows["texts"][FIRST:FIRST + 32], rows["contexts"][FIRST:FIRST + 32])]
        return training_step(lambda: encoder(batch), head, opt, labels, bf16)

    times = interleaved_step_times({name: step_of(name) for name in args.variants}, args.rounds, args.steps)
    entry = {name: {"overrides": TEXT_VARIANTS[name][0], "bf16_autocast": TEXT_VARIANTS[name][1],
                    "median_step_s": round(statistics.median(t), 3), "step_s": [round(x, 3) for x in t]}
             for name, t in times.items()}
    write_result(args.name, {"threads": args.threads, "batch": 32, "rows": [FIRST, FIRST + 31],
                             "rounds": args.rounds, "steps_per_round": args.steps, "variants": entry})


TASKS = {"face": face_main, "voice": voice_main, "text": text_main}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in TASKS:
        sys.exit(f"usage: python -m benchmarks.step_time {{{'|'.join(TASKS)}}} [options] (TASK -h: its options)")
    TASKS[argv[0]](argv[1:])


if __name__ == "__main__":
    main()
