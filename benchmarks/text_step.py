"""Training step time of the MELD text encoders (MiniLM-L6, MPNet-base), by precision.

    python benchmarks/text_step.py [--root ../shared/data/meld] [--rounds 3] [--steps 3]
                                   [--threads 2] [--name text_step] [--overwrite]

Builds each encoder as ``experiment=meld_text`` composes it (``model/text_encoder=mpnet`` for
MPNet, which needs ``make models``; ``finetune=4``: only its last 4 layers train), plus a
linear head, and times forward + backward + AdamW on one fixed batch: 32 consecutive
utterances of MELD's train split with their 2 past turns, as the recipe reads them (not
length-bucketed, so longer than the recipe's average batch; data loading not counted). The
variants run in interleaved rounds (``common.interleaved_step_times``). Writes
benchmarks/results/<name>.json (an existing one only with --overwrite). Run it alone on the
machine.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, interleaved_step_times, refuse_to_overwrite, step_time_parser, write_result  # noqa: E402

#: name -> (overrides of experiment=meld_text, bf16 autocast)
VARIANTS = {
    "minilm_fp32": ([], False),
    "minilm_bf16": ([], True),
    "mpnet_fp32": (["model/text_encoder=mpnet"], False),
    "mpnet_bf16": (["model/text_encoder=mpnet"], True),
    "mpnet_last4_bf16": (["model/text_encoder=mpnet", "model.encoders.text.finetune=4"], True),
}
FIRST = 1000  # the batch: train rows FIRST .. FIRST+31 (past the first dialogues' short openings)


def build(overrides: list[str]):
    """The recipe's text encoder (with ``overrides``), a linear head and AdamW on what trains."""
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from emomm.utils.runtime import CONFIG_DIR
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        cfg = compose("train", overrides=["experiment=meld_text", *overrides])
    torch.manual_seed(0)
    encoder = instantiate(cfg.model.encoders.text, _convert_="all").train()
    head = torch.nn.Linear(encoder.out_dim, 7)
    opt = torch.optim.AdamW([p for p in [*encoder.parameters(), *head.parameters()] if p.requires_grad], lr=1e-4)
    return encoder, head, opt, int(cfg.text.context_turns)


def main() -> None:
    ap = step_time_parser(__doc__, list(VARIANTS), "text_step", rounds=3, steps=3, threads=2)
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "meld"))
    args = ap.parse_args()
    csv = Path(args.root) / "train_sent_emo.csv"
    if not csv.is_file():
        sys.exit(f"MELD not found at {args.root} (no train_sent_emo.csv); pass --root PATH")
    refuse_to_overwrite(args.name, args.overwrite)
    import torch

    from emomm.data.datasets.meld import read_meld_csv
    torch.set_num_threads(args.threads)
    labels = torch.zeros(32, dtype=torch.long)

    def step_of(name: str):
        encoder, head, opt, turns = build(VARIANTS[name][0])
        rows = read_meld_csv(csv, context_turns=turns, speakers=False)
        batch = [{"text": t, "context": c} for t, c in
                 zip(rows["texts"][FIRST:FIRST + 32], rows["contexts"][FIRST:FIRST + 32])]

        def step() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=VARIANTS[name][1]):
                loss = torch.nn.functional.cross_entropy(head(encoder(batch)).float(), labels)
            loss.backward()
            opt.step()
            opt.zero_grad()
        return step

    times = interleaved_step_times({name: step_of(name) for name in args.variants}, args.rounds, args.steps)
    entry = {name: {"overrides": VARIANTS[name][0], "bf16_autocast": VARIANTS[name][1],
                    "median_step_s": round(statistics.median(t), 3), "step_s": [round(x, 3) for x in t]}
             for name, t in times.items()}
    write_result(args.name, {"threads": args.threads, "batch": 32, "rows": [FIRST, FIRST + 31],
                             "rounds": args.rounds, "steps_per_round": args.steps, "variants": entry})


if __name__ == "__main__":
    main()
