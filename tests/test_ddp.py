"""Training beyond one process: `trainer=ddp` on 2 CPU processes (gloo), and validation
metrics under DDP equal to the single-process ones (synced once, no sample counted twice)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=16",
        "data.batch_size=3"]


@pytest.mark.slow
def test_trainer_ddp_fast_dev_run_on_two_cpu_processes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "emomm.train", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
           "trainer.precision=32-true", "trainer.sync_batchnorm=false", "debug=fast_dev_run", "data.n_train=12", "data.n_val=7", "data.n_test=7",
           *TINY, f"hydra.run.dir={out}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "distributed_backend=gloo" in r.stdout + r.stderr and "All distributed processes registered" in r.stdout + r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["test"]) >= {"acc", "uar"}


def _validate(cfg, strategy, devices):
    import lightning as L

    from emomm.runs.training import build_module

    L.seed_everything(0)
    dm = instantiate(cfg.data)
    model = build_module(cfg, dm)
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy=strategy, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    return trainer.validate(model, datamodule=dm, verbose=False)[0]


def test_two_process_validation_equals_one_process(cfg_factory):
    """7 validation samples in batches of 3 over 2 processes: uneven shards and a padded
    batch, the cases where a distributed sampler repeats samples or a metric is averaged
    per process instead of synced."""
    cfg = cfg_factory(TINY + ["data.n_train=6", "data.n_val=7", "data.n_test=7"])
    one = _validate(cfg, "auto", 1)
    two = _validate(cfg, "ddp_fork", 2)
    keys = [k for k in one if not k.endswith("loss")]
    assert keys and {k: two[k] for k in keys} == pytest.approx({k: one[k] for k in keys}, abs=1e-6)


# -- SLURM through Hydra's submitit launcher ------------------------------------------------------
def test_slurm_launcher_configs_compose(cfg_factory):
    cfg = cfg_factory(["hydra/launcher=slurm_gpu", "hydra.launcher.partition=a100"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node) == ("a100", 1, 1)
    cfg = cfg_factory(["hydra/launcher=slurm_multinode", "trainer=slurm_ddp", "hydra.launcher.nodes=3"],
                      subdir="multi")
    assert cfg.hydra.launcher.nodes == 3 and cfg.hydra.launcher.gpus_per_node == cfg.hydra.launcher.tasks_per_node
    assert (cfg.trainer.num_nodes, cfg.trainer.devices, cfg.trainer.strategy) == (3, 4, "ddp")
    assert cfg.hydra.launcher.submitit_folder.endswith(".submitit/%j")


@pytest.mark.slow
def test_submitit_local_executor_runs_a_tiny_multirun(tmp_path):
    """The same launcher code path as SLURM (pickled job, submitit folder, results read back),
    executed by submitit's local executor."""
    sweep = tmp_path / "mr"
    cmd = [sys.executable, "-m", "emomm.train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
           "seed=1,2", "debug=fast_dev_run", "data.n_train=7", "data.n_val=3", "data.n_test=3", *TINY,
           f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    for job in ("0", "1"):
        assert set(json.loads((sweep / job / "metrics.json").read_text())["test"]) >= {"acc", "uar"}
    assert list((sweep / ".submitit").glob("*/*_result.pkl"))


@pytest.mark.parametrize("recipe", ["fer2013_gpu", "ravdess_voice_gpu", "meld_text_gpu", "fusion_synthetic_gpu"])
def test_gpu_recipes_compose_on_the_gpu_trainer(cfg_factory, recipe):
    cfg = cfg_factory([f"experiment={recipe}"])
    assert (cfg.trainer.accelerator, cfg.trainer.devices, cfg.trainer.precision) == ("gpu", 1, "bf16-mixed")
    assert "gpu" in cfg.tags and cfg.data.batch_size >= 64
