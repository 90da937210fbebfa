"""Training step time of the RAVDESS voice encoders, by memory layout and precision.

    python -m benchmarks.voice_step [--rounds 6] [--steps 4] [--threads 1] [--name voice_step] [--overwrite]

Builds the encoders exactly as ``experiment=ravdess_voice`` (the log-mel CNN-BiLSTM) and
``experiment=ravdess_ge2e`` (the pretrained GE2E LSTM; needs ``make models``) compose them, plus
a linear head, and times forward + backward + AdamW on one fixed batch of 32 random waveforms
of 1.5-3 s (the recipe's batch and crop; the data loading is not counted). The variants run
in interleaved rounds (each round: ``--steps`` steps of every variant, the first step of each
variant's first round dropped as warm-up), so a drift in the machine's speed hits all alike.
Writes benchmarks/results/<name>.json (an existing one only with --overwrite). Run it alone
on the machine.
"""
from __future__ import annotations

import statistics

from benchmarks.common import interleaved_step_times, refuse_to_overwrite, step_time_parser, write_result

#: name -> (experiment, encoder overrides, bf16 autocast)
VARIANTS = {
    "cnn_nchw_fp32": ("ravdess_voice", ["model.encoders.voice.channels_last=false"], False),
    "cnn_nhwc_fp32": ("ravdess_voice", ["model.encoders.voice.channels_last=true"], False),
    "cnn_nhwc_bf16": ("ravdess_voice", ["model.encoders.voice.channels_last=true"], True),
    "ge2e_fp32": ("ravdess_ge2e", [], False),
    "ge2e_bf16": ("ravdess_ge2e", [], True),
}


def build(experiment: str, overrides: list[str]):
    """The experiment's voice encoder, a linear head and AdamW."""
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from emomm.utils.runtime import CONFIG_DIR
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        cfg = compose("train", overrides=[f"experiment={experiment}", *overrides])
    torch.manual_seed(0)
    encoder = instantiate(cfg.model.encoders.voice, _convert_="all").train()
    head = torch.nn.Linear(encoder.out_dim, 8)
    opt = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=1e-4)
    return encoder, head, opt


def main() -> None:
    args = step_time_parser(__doc__, list(VARIANTS), "voice_step", rounds=6, steps=4, threads=1).parse_args()
    refuse_to_overwrite(args.name, args.overwrite)
    import torch
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(24000, 48001, (32,), generator=g)
    wave = torch.randn(32, 48000, generator=g) * 0.05
    labels = torch.randint(0, 8, (32,), generator=g)

    def step_of(name: str):
        encoder, head, opt = build(*VARIANTS[name][:2])

        def step() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=VARIANTS[name][2]):
                loss = torch.nn.functional.cross_entropy(head(encoder(wave, lengths)).float(), labels)
            loss.backward()
            opt.step()
            opt.zero_grad()
        return step

    times = interleaved_step_times({name: step_of(name) for name in args.variants}, args.rounds, args.steps)
    entry = {name: {"experiment": VARIANTS[name][0], "overrides": VARIANTS[name][1], "bf16_autocast": VARIANTS[name][2],
                    "median_step_s": round(statistics.median(t), 3), "step_s": [round(x, 3) for x in t]}
             for name, t in times.items()}
    write_result(args.name, {"threads": args.threads, "batch": 32, "seconds": [1.5, 3.0],
                                "rounds": args.rounds, "steps_per_round": args.steps, "variants": entry})


if __name__ == "__main__":
    main()
