"""The classic eGeMAPS baseline on RAVDESS, and its late fusion with trained voice runs.

    pip install opensmile        # or: pip install -e .[egemaps]
    python -m benchmarks.egemaps_ravdess [--root data/ravdess] [--runs RUN_DIR ...]

eGeMAPS v02 functionals (88 hand-crafted prosodic, voice-quality and spectral statistics per
clip, from the `opensmile` package, no download) of every speech clip, with the split of
`experiment=ravdess_voice` (train actors 01-16, validation actors 17-20). A multinomial logistic
regression (balanced class weights; its C picked by actor-grouped 4-fold CV on the training
actors, never on validation) is trained on the features standardised two ways:
``global`` (one mean/std from the training clips: usable on a single clip) and ``speaker``
(each actor's clips z-scored with that actor's own statistics, the usual speaker
normalisation of the SER literature; on validation actors it is transductive: it needs a batch
of the speaker's unlabelled clips).

``--runs``: run folders of trained RAVDESS voice models (e.g. the recipe's seeds). Each one's
best checkpoint scores the validation clips as it was trained (`emomm.runs.ensembling.collect`), and
its probabilities are fused with the eGeMAPS ones by a weighted mean of log-probabilities,
``(1 - w) log p_cnn + w log p_egemaps`` for each w in ``--weights`` (reported all: picking one
on the validation actors would tune for them). Writes benchmarks/results/egemaps_ravdess.json.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import DATA_DIR, write_result

TRAIN_ACTORS, VAL_ACTORS = range(1, 17), range(17, 21)


def speech_clips(root: Path) -> list[tuple[str, int, int]]:
    """(path, label index in emomm.labels.RAVDESS, actor) of the recipe actors' speech clips,
    chosen as the voice datamodule chooses them (its own scan: one file per recording)."""
    from emomm.data.datasets.ravdess import RavdessDataModule
    clips, _, _ = RavdessDataModule(str(root), include_song=False).scan()
    return sorted((c.path, c.label, c.speaker) for c in clips if c.speaker in (*TRAIN_ACTORS, *VAL_ACTORS))


def labelled_clips(root: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """:func:`speech_clips` as ``(paths, labels [N], actors [N])``; exits naming ``--root``
    when there are none."""
    clips = speech_clips(root)
    if not clips:
        sys.exit(f"no RAVDESS speech clips of actors 01-20 under {root}; pass --root PATH")
    return [c[0] for c in clips], np.array([c[1] for c in clips]), np.array([c[2] for c in clips])


def egemaps(paths: list[str], sample_rate: int = 16000) -> np.ndarray:
    """``[N, 88]`` eGeMAPS v02 functionals of each file, decoded and resampled as the voice
    pipeline does (mono, ``sample_rate``)."""
    import opensmile
    from emomm.media.audio import load_audio
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    return np.stack([smile.process_signal(load_audio(p, sample_rate)[0], sample_rate).to_numpy()[0] for p in paths])


def speaker_normalised(x: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for s in np.unique(speakers):
        m = speakers == s
        out[m] = (x[m] - x[m].mean(0)) / (x[m].std(0) + 1e-8)
    return out


def uar(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import balanced_accuracy_score  # = the mean per-class recall
    return float(balanced_accuracy_score(y, pred))


def fit_logreg(x_tr, y_tr, groups, x_va, grid=(0.01, 0.1, 1.0, 10.0)) -> tuple[np.ndarray, float, dict]:
    """Validation probabilities of a balanced logistic regression whose C is chosen by
    actor-grouped CV UAR on the training actors; returns them, the C and the CV UAR per C."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def model(c):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, class_weight="balanced"))
    cv = {c: uar(y_tr, cross_val_predict(model(c), x_tr, y_tr, groups=groups, cv=GroupKFold(4))) for c in grid}
    best = max(cv, key=cv.get)
    return model(best).fit(x_tr, y_tr).predict_proba(x_va), best, cv


def run_probs(run_dir: str) -> tuple[np.ndarray, list[str]]:
    """A voice run's validation probabilities (emomm.labels.RAVDESS order) and the clip paths."""
    from omegaconf import OmegaConf
    from emomm.runs.ensembling import collect, resolve_run
    from emomm.runs.evaluation import eval_datamodule
    from emomm.models.module import EmotionModule
    ckpt = resolve_run(run_dir)
    model = EmotionModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    dm = eval_datamodule(OmegaConf.create({}), [model], ckpt)
    dm.setup("test")
    p = collect({"run": model}, dm.val_dataloader(), dm.label_names).probs
    return p[0].numpy(), list(dm.splits["val"].paths)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(DATA_DIR / "ravdess"))
    ap.add_argument("--runs", nargs="*", default=[], help="RAVDESS voice run folders to fuse with")
    ap.add_argument("--weights", nargs="+", type=float, default=[0.2, 0.3, 0.5])
    args = ap.parse_args()
    paths, y, actor = labelled_clips(Path(args.root))
    start = time.time()
    feats = egemaps(paths)
    extract_s = time.time() - start
    tr, va = np.isin(actor, TRAIN_ACTORS), np.isin(actor, VAL_ACTORS)
    result: dict = {"clips": {"train": int(tr.sum()), "val": int(va.sum())}, "features": int(feats.shape[1]),
                    "extract_s": round(extract_s, 1), "baseline": {}, "fusion": {}}
    probs = {}
    for norm, x in (("global", feats), ("speaker", speaker_normalised(feats, actor))):
        p, c, cv = fit_logreg(x[tr], y[tr], actor[tr], x[va])
        probs[norm] = p
        result["baseline"][norm] = {"val_uar": uar(y[va], p.argmax(1)), "C": c,
                                    "train_cv_uar": {str(key): round(v, 4) for key, v in cv.items()}}
        print(f"eGeMAPS {norm}: C={c} train-CV UAR {cv[c]:.3f}, val UAR {result['baseline'][norm]['val_uar']:.3f}",
              flush=True)
    index = {p: i for i, p in enumerate(np.array(paths)[va])}
    for run in args.runs:
        p_cnn, run_paths = run_probs(run)
        missing = [p for p in run_paths if p not in index]
        if missing:
            sys.exit(f"{run}: {len(missing)} of its validation clips are not among the eGeMAPS clips "
                     f"(e.g. {missing[0]}): was it trained on another split or root?")
        order = [index[p] for p in run_paths]
        y_va = y[va][order]
        entry = {"cnn_val_uar": uar(y_va, p_cnn.argmax(1))}
        for norm, p in probs.items():
            for w in args.weights:
                fused = (1 - w) * np.log(p_cnn + 1e-8) + w * np.log(p[order] + 1e-8)
                entry[f"{norm}_w{w}"] = uar(y_va, fused.argmax(1))
        result["fusion"][run] = entry
        print(run, {key: round(v, 4) for key, v in entry.items()}, flush=True)
    if args.runs:
        keys = [key for key in next(iter(result["fusion"].values())) if key != "cnn_val_uar"]
        base = np.mean([e["cnn_val_uar"] for e in result["fusion"].values()])
        result["fusion_mean_gain"] = {key: round(float(np.mean([e[key] for e in result["fusion"].values()]) - base), 4)
                                      for key in keys}
    write_result("egemaps_ravdess", result)


if __name__ == "__main__":
    main()
