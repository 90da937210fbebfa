"""`seed=` fixes data order, augmentation and initialisation: one seed, one machine, the
same metrics; another seed, other metrics."""
import json

import pytest

from emomm.train import train
from tests.conftest import make_cfg

# A tiny recipe that exercises every random part: shuffled batches, random crops + flips +
# erasing of synthetic faces (crop_size), dropout, random init, and the EMA callback.
TINY = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=32",
        "face.crop_size=28", "data.n_train=42", "data.n_val=14", "data.n_test=14", "data.batch_size=7",
        "trainer.max_epochs=2", "callbacks=ema", "callbacks.ema.decay=0.5",
        "model.scheduler.scheduler.warmup_epochs=1", "+trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "logger=csv"]


def run(tmp_path, seed, extra=()):
    out = tmp_path / f"seed{seed}_{len(list(tmp_path.iterdir()))}"
    out.mkdir(parents=True)
    cfg = make_cfg("train", out, [*TINY, f"seed={seed}", *extra])
    train(cfg)
    m = json.loads((out / "metrics.json").read_text())
    # Everything but timings and paths, plus the logged per-step losses and learning rates
    # (far more sensitive to any stray randomness than accuracies on 14 samples).
    m = {k: v for k, v in m.items() if k not in ("train_time_s", "best_ckpt")}
    m["csv"] = (out / "csv" / "metrics.csv").read_text()
    assert "train/loss_step" in m["csv"]
    return m


@pytest.mark.parametrize("workers", [0, pytest.param(1, marks=pytest.mark.slow)], ids=["in_process", "one_worker"])
def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path, workers):
    extra = [f"data.num_workers={workers}"]
    a = run(tmp_path, 3, extra)
    b = run(tmp_path, 3, extra)
    assert a == b
    assert a["test"] and a["best_val"]
    c = run(tmp_path, 4, extra)
    assert c["csv"] != a["csv"]
