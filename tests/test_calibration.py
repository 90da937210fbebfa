"""Calibration (issue 41): ECE, temperature scaling, ``emomm.eval calibrate=true`` and a
calibrated checkpoint's probabilities in the Predictor, the module, ensembles and export."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from emomm.inference.predictor import Predictor
from emomm.models.calibration import (apply_temperatures, expected_calibration_error, fit_temperature, nll,
                                      parse_calibration, reliability_bins)
from emomm.models.module import EmotionModule
from emomm.utils.safe_load import CheckpointError, load_checkpoint

TINY = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=32"]


# -- the pure functions ------------------------------------------------------------------------------

def test_ece_equals_a_hand_computation():
    """Top-1 confidences 0.95 (right), 0.94 (wrong), 0.75 (wrong), 0.65 (right), 0.55 (right):
    15 bins of width 1/15; 0.95 and 0.94 share bin 14, the others are alone in theirs."""
    probs = torch.tensor([[0.95, 0.05], [0.06, 0.94], [0.75, 0.25], [0.35, 0.65], [0.45, 0.55]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    by_hand = (2 / 5 * abs(0.5 - (0.95 + 0.94) / 2) + 1 / 5 * abs(0 - 0.75) + 1 / 5 * abs(1 - 0.65)
               + 1 / 5 * abs(1 - 0.55))
    assert expected_calibration_error(probs, labels) == pytest.approx(by_hand, abs=1e-6)
    bins = reliability_bins(probs, labels)
    assert len(bins["count"]) == 15 and len(bins["edges"]) == 16 and sum(bins["count"]) == 5
    assert bins["count"][14] == 2 and bins["accuracy"][14] == 0.5
    assert bins["confidence"][14] == pytest.approx(0.945)
    assert bins["count"][11] == 1 and bins["accuracy"][11] == 0.0   # 0.75 in [0.733, 0.8)
    # the bins give the same ECE back
    ece = sum(n / 5 * abs(a - c) for n, a, c in zip(bins["count"], bins["accuracy"], bins["confidence"]))
    assert ece == pytest.approx(by_hand, abs=1e-6)


def overconfident(n: int = 3000, k: int = 5, sharpen: float = 4.0, seed: int = 0):
    """Labels drawn from ``softmax(z)``; the "model" answers ``sharpen * z``: right as often as
    a calibrated model, far too sure of itself. (logits [n, k], labels [n])."""
    g = torch.Generator().manual_seed(seed)
    z = 1.5 * torch.randn(n, k, generator=g, dtype=torch.float64)
    labels = torch.multinomial(z.softmax(-1), 1, generator=g).squeeze(1)
    return sharpen * z, labels


def test_a_fitted_temperature_lowers_the_ece_of_an_overconfident_model():
    logits, labels = overconfident()
    t = fit_temperature(logits, labels)
    assert 3.0 < t < 5.0   # the model sharpened its logits 4x
    grid = np.exp(np.linspace(math.log(0.05), math.log(20), 400))
    assert nll(logits, labels, t) <= min(nll(logits, labels, g) for g in grid) + 1e-6   # the minimum NLL
    before = expected_calibration_error(logits.softmax(-1), labels)
    after = expected_calibration_error((logits / t).softmax(-1), labels)
    assert before > 0.15 and after < 0.04 and after < before / 4
    assert torch.equal((logits / t).argmax(-1), logits.argmax(-1))   # argmax (accuracy) unchanged
    assert fit_temperature(logits, labels) == t                      # deterministic


def test_an_underconfident_model_gets_a_temperature_below_one():
    logits, labels = overconfident(sharpen=0.4)
    assert 0.3 < fit_temperature(logits, labels) < 0.5


def test_bad_temperatures_are_refused_with_the_fix():
    assert parse_calibration(None) is None
    assert parse_calibration({"temperature": 2, "fitted_on": {"split": "val"}}) == {"temperature": 2.0, "heads": {}}
    for bad in (0, -1.0, float("nan"), float("inf"), "2", True, None):
        with pytest.raises(ValueError, match="calibrate=true"):
            parse_calibration({"temperature": bad})
    with pytest.raises(ValueError, match="heads.face"):
        parse_calibration({"temperature": 1.5, "heads": {"face": 0}})
    with pytest.raises(ValueError, match="mapping"):
        parse_calibration(1.5)
    with pytest.raises(ValueError, match="cannot fit"):
        fit_temperature(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


def test_temperatures_apply_to_the_fused_head_subsets_and_heads_not_aux():
    z = torch.ones(2, 3)
    one = apply_temperatures({"fused": z, "modality/face": z, "aux/sentiment": z}, parse_calibration({"temperature": 2}))
    assert torch.equal(one["fused"], z / 2) and torch.equal(one["modality/face"], z / 2)  # one modality: the same
    assert torch.equal(one["aux/sentiment"], z)
    temps = parse_calibration({"temperature": 2, "heads": {"face": 4}})
    mm = apply_temperatures({"fused": z, "subset/face": z, "modality/face": z, "modality/voice": z}, temps)
    assert torch.equal(mm["subset/face"], z / 2) and torch.equal(mm["modality/face"], z / 4)
    assert torch.equal(mm["modality/voice"], z)   # no temperature fitted for it: as trained


# -- eval, the checkpoint and everything that predicts from it ----------------------------------------

@pytest.fixture(scope="module")
def face_run(tmp_path_factory):
    """A tiny face model trained for 2 epochs on synthetic faces, then ``emomm.eval
    calibrate=true``: (checkpoint, eval result, eval folder)."""
    from emomm.eval import evaluate
    from emomm.train import train
    from tests.conftest import make_cfg
    out = tmp_path_factory.mktemp("calib_run")
    train(make_cfg("train", out, TINY + ["data.n_train=56", "data.n_val=42", "data.n_test=28", "data.batch_size=14",
                                         "trainer.max_epochs=2", "test=false", "model.optimizer.lr=3e-3"]))
    ckpt = out / "checkpoints" / "best.ckpt"
    ev = tmp_path_factory.mktemp("calib_eval")
    result = evaluate(make_cfg("eval", ev, [f"ckpt_path={ckpt}", "calibrate=true"]))
    return ckpt, result, ev


def crops(n: int = 6) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_eval_reports_ece_and_writes_the_reliability_diagram_and_a_calibrated_copy(face_run):
    ckpt, result, out = face_run
    saved = json.loads((out / "metrics.json").read_text())
    cal, metrics = saved["calibration"], saved["metrics"]
    t = cal["temperature"]
    assert 0.05 < t < 20 and cal["split"] == "test" and cal["n_bins"] == 15
    fit = cal["fitted_on"]
    assert fit["split"] == "val" and fit["n"] == 42 and fit["nll_after"] <= fit["nll_before"] + 1e-9
    # beside the other test metrics: the checkpoint's own (here: calibrated) ECE and NLL
    assert metrics["ece"] == pytest.approx(cal["calibrated"]["ece"]) and metrics["nll"] == cal["calibrated"]["nll"]
    assert 0 <= cal["uncalibrated"]["ece"] <= 1 and "acc" in metrics and "uar" in metrics
    from PIL import Image
    png = Image.open(out / "reliability_diagram.png")
    assert png.size[0] > 500 and png.size[1] > 300   # two panels: uncalibrated, calibrated
    copy = load_checkpoint(cal["checkpoint"])
    assert Path(cal["checkpoint"]) == out / "calibrated.ckpt"
    assert copy["hyper_parameters"]["calibration"]["temperature"] == t
    original = load_checkpoint(ckpt)
    assert original["hyper_parameters"]["calibration"] is None   # the run's own checkpoint is left as it was
    assert all(torch.equal(original["state_dict"][k], v) for k, v in copy["state_dict"].items())


def test_scoring_the_calibrated_copy_gives_the_ece_reported_for_it(face_run, tmp_path):
    """Scoring the calibrated copy gives the ECE calibrate=true reported for it, and the
    uncalibrated ECE is the one of the original checkpoint's logits."""
    from emomm.eval import evaluate
    from tests.conftest import make_cfg
    ckpt, result, out = face_run
    again = evaluate(make_cfg("eval", tmp_path, [f"ckpt_path={out / 'calibrated.ckpt'}"]))
    assert again["calibration"]["temperature"] == result["calibration"]["temperature"]
    assert again["metrics"]["ece"] == pytest.approx(result["metrics"]["ece"], abs=1e-6)
    assert again["metrics"]["acc"] == result["metrics"]["acc"]
    plain = evaluate(make_cfg("eval", tmp_path / "plain", [f"ckpt_path={ckpt}"]))
    assert plain["calibration"]["temperature"] is None and "calibrated" not in plain["calibration"]
    assert plain["metrics"]["ece"] == pytest.approx(result["calibration"]["uncalibrated"]["ece"], abs=1e-6)
    assert (tmp_path / "plain" / "reliability_diagram.png").is_file()
    assert not (tmp_path / "plain" / "calibrated.ckpt").exists()


def test_a_calibrated_checkpoint_predicts_softmax_of_logits_over_t(face_run):
    ckpt, result, out = face_run
    t = result["calibration"]["temperature"]
    raw = Predictor.from_checkpoint(ckpt, detector="none").classify_faces(crops())
    cal = Predictor.from_checkpoint(out / "calibrated.ckpt", detector="none").classify_faces(crops())
    logits = np.log(raw.astype(np.float64))   # the logits up to a constant per row
    z = logits / t
    expected = np.exp(z - z.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    assert abs(t - 1) > 1e-3 and not np.allclose(cal, raw, atol=1e-4)
    np.testing.assert_allclose(cal, expected, atol=2e-5)
    assert (cal.argmax(-1) == raw.argmax(-1)).all()


def test_the_module_scales_eval_logits_only_and_old_checkpoints_are_unchanged(face_run, tmp_path):
    """What the ensembles (``model(batch)``), predict_step and export read: eval-mode logits
    divided by T; training logits as they were. A checkpoint without the ``calibration`` key
    (written before it existed) loads and predicts exactly as one with ``calibration: None``."""
    ckpt, result, out = face_run
    t = result["calibration"]["temperature"]
    plain = EmotionModule.load_from_checkpoint(ckpt).eval()
    cal = EmotionModule.load_from_checkpoint(out / "calibrated.ckpt").eval()
    batch = {"inputs": {"face": torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))}}
    with torch.no_grad():
        z, zc = plain(batch), cal(batch)
        assert torch.allclose(zc, z / t, atol=1e-6, rtol=1e-6)
        assert torch.equal(cal.predict_step({**batch, "index": 0, "label": 0}, 0)["probs"], (z / t).softmax(-1))
        plain.train(), cal.train()
        torch.manual_seed(0)
        a = plain(batch)
        torch.manual_seed(0)
        assert torch.equal(cal(batch), a)   # training: no temperature
    saved = load_checkpoint(ckpt)
    saved["hyper_parameters"].pop("calibration")
    old = tmp_path / "old.ckpt"
    torch.save(saved, old)
    assert EmotionModule.load_from_checkpoint(old).temperatures is None
    before = Predictor.from_checkpoint(ckpt, detector="none").classify_faces(crops())
    assert np.array_equal(Predictor.from_checkpoint(old, detector="none").classify_faces(crops()), before)


def test_the_export_graph_divides_by_t(face_run):
    from emomm.inference.export_graph import ExportNet
    ckpt, result, out = face_run
    t = result["calibration"]["temperature"]
    cal = EmotionModule.load_from_checkpoint(out / "calibrated.ckpt").eval()
    plain = EmotionModule.load_from_checkpoint(ckpt).eval()
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        raw, scaled = ExportNet(plain)(x), ExportNet(cal)(x)
        raw, scaled = (raw[0], scaled[0]) if isinstance(raw, tuple) else (raw, scaled)
        assert torch.allclose(scaled, raw / t, atol=1e-6, rtol=1e-6)
        assert torch.allclose(scaled, cal({"inputs": {"face": x}}), atol=1e-6)


def test_the_ensemble_runner_averages_calibrated_probabilities(face_run):
    ckpt, result, out = face_run
    raw = Predictor.from_checkpoint(ckpt, detector="none").classify_faces(crops())
    cal = Predictor.from_checkpoint(out / "calibrated.ckpt", detector="none").classify_faces(crops())
    both = Predictor.from_checkpoint([ckpt, out / "calibrated.ckpt"], detector="none").classify_faces(crops())
    np.testing.assert_allclose(both, (raw + cal) / 2, atol=1e-5)
    assert not np.allclose(both, raw, atol=1e-4)   # the calibrated member counts with its own probabilities


def test_a_bad_temperature_in_a_checkpoint_is_a_checkpoint_error(face_run, tmp_path):
    _, _, out = face_run
    saved = load_checkpoint(out / "calibrated.ckpt")
    saved["hyper_parameters"]["calibration"] = {"temperature": -1.0}
    bad = tmp_path / "bad.ckpt"
    torch.save(saved, bad)
    with pytest.raises(CheckpointError, match="temperature must be a finite number > 0"):
        EmotionModule.load_from_checkpoint(bad)


def test_calibrate_refuses_raw_weights(face_run, tmp_path):
    from emomm.eval import evaluate
    from tests.conftest import make_cfg
    ckpt, _, _ = face_run
    with pytest.raises(ValueError, match="cannot calibrate weights=raw"):
        evaluate(make_cfg("eval", tmp_path, [f"ckpt_path={ckpt}", "calibrate=true", "weights=raw"]))


def test_an_onnx_export_of_a_calibrated_checkpoint_gives_the_calibrated_probabilities(face_run, tmp_path):
    pytest.importorskip("onnxruntime")
    from emomm.inference.onnx_export import export
    ckpt, result, out = face_run
    meta = export(ckpt_path=out / "calibrated.ckpt", out_dir=tmp_path / "onnx", format="onnx")
    assert meta["calibration"]["temperature"] == result["calibration"]["temperature"]
    onnx = Predictor.from_checkpoint(tmp_path / "onnx", backend="onnxruntime", detector="none").classify_faces(crops())
    cal = Predictor.from_checkpoint(out / "calibrated.ckpt", detector="none").classify_faces(crops())
    np.testing.assert_allclose(onnx, cal, atol=1e-4)
    raw = Predictor.from_checkpoint(ckpt, detector="none").classify_faces(crops())
    assert not np.allclose(onnx, raw, atol=1e-3)
