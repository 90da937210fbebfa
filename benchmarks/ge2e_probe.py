"""Which layer of the pretrained GE2E speaker LSTM carries emotion: a linear probe on RAVDESS.

    make models                  # the Resemblyzer weights, once
    python -m benchmarks.ge2e_probe [--root data/ravdess]

Every speech clip of actors 01-20, silence trimmed as the recipe trims it (40 dB below the
peak), goes frozen through the 3 pretrained layers of `model/voice_encoder=ge2e`
(emomm/models/encoders/speaker_ge2e.py); each layer's outputs are pooled to their time mean
and standard deviation (512 numbers). A balanced logistic regression on the standardised
features (its C picked by actor-grouped 4-fold CV on the training actors, as in
egemaps_ravdess.py) is scored two ways: trained on actors 01-16 and scored on 17-20 (the
recipe's split), and 5-fold CV by actor over 01-20 (4 actors per fold). No training of the
network: this is what chose ``layers: 2``. Writes benchmarks/results/ge2e_probe.json.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import DATA_DIR, write_result
from benchmarks.egemaps_ravdess import TRAIN_ACTORS, VAL_ACTORS, fit_logreg, labelled_clips, uar


@torch.no_grad()
def layer_features(paths: list[str], trim_db: float = 40.0) -> list[np.ndarray]:
    """Per layer, ``[N, 512]``: time mean and std of that layer's outputs on each clip."""
    from emomm.media.audio import load_audio, trim_silence
    from emomm.models.encoders.speaker_ge2e import GE2EVoiceEncoder
    enc = GE2EVoiceEncoder(layers=3, freeze=True, specaugment=None, norm=None, dropout=0.0).eval()
    feats: list[list[np.ndarray]] = [[], [], []]
    for path in paths:
        wave, sr = load_audio(path, 16000)
        wave = torch.from_numpy(trim_silence(wave, sr, top_db=trim_db))[None]
        x = enc.mel(enc._gain(wave, torch.ones_like(wave))).transpose(1, 2)  # [1, T', 40]
        for i, layer in enumerate(enc.lstm):
            x, _ = layer(x)
            feats[i].append(torch.cat([x[0].mean(0), x[0].std(0)]).numpy())
    return [np.stack(f) for f in feats]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(DATA_DIR / "ravdess"))
    args = ap.parse_args()
    paths, y, actor = labelled_clips(Path(args.root))
    start = time.time()
    layers = layer_features(paths)
    result: dict = {"clips": len(paths), "extract_s": round(time.time() - start, 1), "threads": torch.get_num_threads(),
                    "layers": {}}
    tr, va = np.isin(actor, TRAIN_ACTORS), np.isin(actor, VAL_ACTORS)
    for i, x in enumerate(layers, start=1):
        p, c, cv = fit_logreg(x[tr], y[tr], actor[tr], x[va])
        folds = []
        for fold in range(5):
            test = (actor - 1) // 4 == fold
            p_f, _, _ = fit_logreg(x[~test], y[~test], actor[~test], x[test])
            folds.append(uar(y[test], p_f.argmax(1)))
        result["layers"][str(i)] = {"val_uar": uar(y[va], p.argmax(1)), "C": c, "cv5_by_actor": folds,
                                    "cv5_mean": float(np.mean(folds)), "cv5_std": float(np.std(folds))}
        print(f"layer {i}: val UAR {result['layers'][str(i)]['val_uar']:.3f} (C={c}), "
              f"5-fold by actor {np.mean(folds):.3f} +- {np.std(folds):.3f}", flush=True)
    write_result("ge2e_probe", result)


if __name__ == "__main__":
    main()
