"""Training and evaluation end to end on tiny data, in-process and through the CLI."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from emomm.eval import evaluate
from emomm.models.module import EmotionModule
from emomm.train import train
from tests.conftest import reload_twice_and_compare, write_fer_folders

TINY = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=32"]
TINY_SYNTH = TINY + ["data.n_train=28", "data.n_val=14", "data.n_test=14", "data.batch_size=7"]


def test_fast_dev_run_synthetic(cfg_factory):
    summary = train(cfg_factory(TINY_SYNTH + ["debug=fast_dev_run"]))
    assert set(summary["test"]) >= {"acc", "uar", "f1_macro", "f1_weighted"}


def test_fast_dev_run_fer_csv(cfg_factory, fer_csv):
    summary = train(cfg_factory(TINY + ["data=fer2013", f"data.root={fer_csv.parent}", "debug=fast_dev_run"]))
    assert summary["data_sizes"] == {"train": 70, "val": 21, "test": 21}


@pytest.mark.parametrize("variant", ["short", "long"])
def test_fast_dev_run_fer_folders(cfg_factory, tmp_path, variant):
    names = (["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"] if variant == "short"
             else ["angry", "disgusted", "fearful", "happy", "neutral", "sad", "surprised"])
    root = write_fer_folders(tmp_path / variant, names, per_class=3)
    summary = train(cfg_factory(TINY + ["data=fer2013", f"data.root={root}", "debug=fast_dev_run"]))
    assert summary["data_sizes"]["test"] == 21


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One short real run (checkpoints, logs, metrics) shared by the tests below."""
    from tests.conftest import make_cfg
    out = tmp_path_factory.mktemp("run")
    cfg = make_cfg("train", out, TINY_SYNTH + ["debug=limit", "trainer.max_epochs=2"])
    summary = train(cfg)
    return cfg, out, summary


def test_run_folder_holds_every_artifact(trained_run):
    cfg, out, summary = trained_run
    for name in ["config.yaml", "metrics.json", "confusion_matrix.png", "confusion_matrix.csv",
                 "checkpoints/best.ckpt", "checkpoints/last.ckpt", "csv/metrics.csv"]:
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 2 and m["num_params"] > 0 and m["train_time_s"] > 0
    assert m["data_sizes"] == {"train": 28, "val": 14, "test": 14}
    assert set(m["best_val"]) >= {"uar", "acc", "epoch"} and "recall/happy" in m["test"]
    rows = (out / "confusion_matrix.csv").read_text().splitlines()
    assert rows[0].split(",")[1:] == m["label_names"]
    assert sum(int(x) for r in rows[1:] for x in r.split(",")[1:]) == 14  # limit_test_batches=2 x 7
    header = (out / "csv/metrics.csv").read_text().splitlines()[0]
    assert "val/uar" in header and "train/loss_epoch" in header and "test/f1_weighted" in header


def test_checkpoint_is_self_contained_and_reloads_identically(trained_run):
    cfg, out, _ = trained_run
    model, batch = reload_twice_and_compare(out / "checkpoints/best.ckpt")
    assert model.label_names == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert model.hparams.preprocessing["face"]["image_size"] == 32
    with torch.no_grad():  # the trained weights matter: a fresh model predicts differently
        assert not torch.equal(model(batch), EmotionModule(**{**model.hparams}).eval()(batch))


def test_eval_needs_only_the_checkpoint(trained_run, cfg_factory):
    cfg, out, summary = trained_run
    ecfg = cfg_factory([f"ckpt_path={out}/checkpoints/best.ckpt", "trainer.limit_test_batches=2"],
                       config_name="eval", subdir="eval")
    result = evaluate(ecfg)
    assert result["metrics"]["acc"] == pytest.approx(summary["test"]["acc"])
    assert (Path(ecfg.paths.output_dir) / "confusion_matrix.png").is_file()


def test_eval_can_switch_on_shift_and_flip_tta(trained_run, cfg_factory):
    cfg, out, summary = trained_run
    ecfg = cfg_factory([f"ckpt_path={out}/checkpoints/best.ckpt", "trainer.limit_test_batches=2",
                        "tta_hflip=[face]", "tta_shift={face: 2}"], config_name="eval", subdir="eval-tta")
    result = evaluate(ecfg)
    assert result["tta"] == {"tta_hflip": ["face"], "tta_shift": {"face": 2}, "tta_tencrop": []}
    assert 0.0 <= result["metrics"]["acc"] <= 1.0


def test_eval_on_other_data_with_mapped_labels(trained_run, cfg_factory, fer_csv):
    cfg, out, _ = trained_run
    ecfg = cfg_factory([f"ckpt_path={out}/checkpoints/best.ckpt", "data=fer2013",
                        f"data.root={fer_csv.parent}"],
                       config_name="eval", subdir="eval-fer")
    result = evaluate(ecfg)
    # The FER images are resized to the model's 32 px (from the checkpoint), all 21 scored.
    assert result["data"]["image_size"] == 32
    assert 0.0 <= result["metrics"]["acc"] <= 1.0


@pytest.mark.parametrize("logger", ["wandb", "tensorboard"])
def test_other_loggers_work_offline(cfg_factory, logger):
    cfg = cfg_factory(TINY_SYNTH + ["debug=limit", f"logger={logger}"])
    train(cfg)
    out = Path(cfg.paths.output_dir)
    assert (out / "csv/metrics.csv").is_file()
    if logger == "wandb":
        assert list(out.glob("wandb/offline-run-*")), "wandb did not write an offline run"
    else:
        assert list(out.glob("tensorboard/**/events.out.tfevents.*"))


def test_cli_train_then_eval_latest(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    root = Path(__file__).resolve().parents[1]
    common = [f"paths.log_dir={tmp_path}"]
    r = subprocess.run([sys.executable, "-m", "emomm.train", *TINY_SYNTH, "debug=limit", *common],
                       cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "test metrics (%)" in r.stdout
    r = subprocess.run([sys.executable, "-m", "emomm.eval", "ckpt_path=latest", *common,
                        "trainer.limit_test_batches=2"],
                       cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "test metrics (%)" in r.stdout and "uar" in r.stdout


def test_missing_checkpoint_is_a_clear_error(cfg_factory):
    ecfg = cfg_factory(["ckpt_path=/nonexistent.ckpt"], config_name="eval")
    with pytest.raises(FileNotFoundError, match="ckpt_path=/nonexistent.ckpt does not exist"):
        evaluate(ecfg)


@pytest.mark.parametrize("script", ["emomm-train", "emomm-eval"])
def test_console_scripts_find_their_configs(script, tmp_path):
    exe = Path(sys.executable).parent / script
    if not exe.exists():
        pytest.skip(f"{script} not installed (pip install -e .)")
    r = subprocess.run([str(exe), "--cfg", "job", "ckpt_path=x" if script == "emomm-eval" else "seed=3"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "_target_: lightning.pytorch.Trainer" in r.stdout


def test_reload_does_not_need_the_initial_weights_file(tmp_path, trained_run):
    """A checkpoint whose encoder started from local weights reloads after they are gone."""
    _, out, _ = trained_run
    ckpt = torch.load(out / "checkpoints/best.ckpt", map_location="cpu", weights_only=True)
    weights = tmp_path / "init.pth"
    model = EmotionModule.load_from_checkpoint(out / "checkpoints/best.ckpt")
    torch.save({k.removeprefix("net.encoders.face.net."): v for k, v in model.state_dict().items()
                if k.startswith("net.encoders.face.net.")}, weights)
    ckpt["hyper_parameters"]["encoders"]["face"]["pretrained_path"] = str(weights)
    moved = tmp_path / "moved.ckpt"
    torch.save(ckpt, moved)
    assert EmotionModule(**ckpt["hyper_parameters"]).net is not None  # builds while the file exists
    weights.unlink()
    reloaded = EmotionModule.load_from_checkpoint(moved)
    assert reloaded.hparams.encoders["face"]["pretrained_path"] is None
    assert torch.equal(reloaded.net.head[-1].weight, model.net.head[-1].weight)


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_follows_the_hardware(cfg_factory, monkeypatch, native):
    """`trainer.precision=auto` trains in bf16 only where the CPU computes it natively
    (emulated bf16 is ~20x slower), and the run records what it used."""
    import emomm.utils.runtime as runtime
    monkeypatch.setattr(runtime, "native_bf16", lambda accelerator: native)
    cfg = cfg_factory(TINY_SYNTH + ["debug=fast_dev_run", "trainer.precision=auto"])
    summary = train(cfg)
    expected = "bf16-mixed" if native else "32-true"
    assert summary["precision"] == expected
    saved = (Path(cfg.paths.output_dir) / "config.yaml").read_text()
    assert f"precision: {expected}" in saved


def test_explicit_bf16_is_kept_but_warned_about_where_emulated(monkeypatch, caplog):
    from omegaconf import OmegaConf
    import emomm.utils.runtime as runtime
    monkeypatch.setattr(runtime, "native_bf16", lambda accelerator: False)
    cfg = OmegaConf.create({"accelerator": "cpu", "precision": "bf16-mixed"})
    with caplog.at_level("WARNING"):
        assert runtime.resolve_precision(cfg) == "bf16-mixed"
    assert cfg.precision == "bf16-mixed" and "emulated" in caplog.text


def test_eval_data_options_adjust_the_stored_data_config(trained_run, cfg_factory, tmp_path):
    """``data.*`` options without ``data=<name>`` (``debug=limit`` sets data.num_workers) apply
    on top of the checkpoint's stored data config instead of replacing it."""
    cfg, out, summary = trained_run
    ecfg = cfg_factory([f"ckpt_path={out}/checkpoints/best.ckpt", "debug=limit"], config_name="eval",
                       subdir="eval-debug")
    assert ecfg.data.num_workers == 0 and "_target_" not in ecfg.data
    assert 0.0 <= evaluate(ecfg)["metrics"]["acc"] <= 1.0
    from emomm.runs.evaluation import eval_datamodule
    from emomm.models.module import EmotionModule
    ckpt = out / "checkpoints" / "best.ckpt"
    other = cfg_factory([f"ckpt_path={ckpt}", "+data.batch_size=3"], config_name="eval", subdir="eval-bs")
    dm = eval_datamodule(other, [EmotionModule.load_from_checkpoint(ckpt)], ckpt)
    assert dm.batch_size == 3 and type(dm).__name__ == "SyntheticDataModule"   # stored config, option on top


def test_latest_says_which_checkpoint_it_took(tmp_path, caplog):
    import logging
    import os

    from emomm.utils.runtime import resolve_ckpt
    old, new = (tmp_path / r / "checkpoints" / "best.ckpt" for r in ("a", "b"))
    for i, p in enumerate((old, new)):
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x")
        os.utime(p, (1000 + i, 1000 + i))
    with caplog.at_level(logging.INFO, logger="emomm.utils.runtime"):
        assert resolve_ckpt("latest", tmp_path) == new
    assert f"ckpt_path=latest: {new} (the newest of 2" in caplog.text


def test_serve_runs_the_configured_compute_threads(monkeypatch):
    import torch

    import emomm.serve.__main__ as entry
    from emomm.utils.runtime import CONFIG_DIR
    from omegaconf import OmegaConf
    cfg = OmegaConf.load(Path(CONFIG_DIR) / "serve.yaml")
    assert cfg.threads == 1                       # the default: one thread, as the README advises
    monkeypatch.setattr(entry, "serve", lambda c: None)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        entry.main.__wrapped__(cfg)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
