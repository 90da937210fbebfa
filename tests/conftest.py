"""Shared fixtures: offline environment, a network guard, Hydra composition, tiny datasets."""
from __future__ import annotations

import os

# Before anything imports transformers / wandb: never reach a hub or an account.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")

import socket
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from PIL import Image

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail any connection that leaves this machine (loopback is allowed: wandb's local
    service uses it)."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if self.family == socket.AF_UNIX or str(host) in ("127.0.0.1", "localhost", "::1"):
            return real_connect(self, address)
        raise RuntimeError(f"test tried to reach the network: {address}")

    monkeypatch.setattr(socket.socket, "connect", guarded)


def make_cfg(config_name: str, tmp_path: Path, overrides: list[str] | None = None) -> DictConfig:
    """Compose a real config the way the CLI does, with all outputs under ``tmp_path``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
        cfg = compose(config_name=config_name, return_hydra_config=True, overrides=overrides or [])
    with open_dict(cfg):
        cfg.paths.root_dir = str(Path(CONF_DIR).parent)
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path / "logs")
        cfg.hydra.runtime.output_dir = str(tmp_path)
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return cfg


@pytest.fixture
def cfg_factory(tmp_path):
    def factory(overrides=None, config_name="train", subdir="run"):
        out = tmp_path / subdir
        out.mkdir(parents=True, exist_ok=True)
        return make_cfg(config_name, out, overrides)
    yield factory
    GlobalHydra.instance().clear()


# -- tiny datasets in their real on-disk formats -----------------------------------------
FER_ORDER = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def fer_image(label: int, rng: np.random.Generator) -> np.ndarray:
    """A 48x48 gray image whose mean brightness encodes the label (learnable, tiny)."""
    base = 30 + label * 30
    return np.clip(rng.normal(base, 10, (48, 48)), 0, 255).astype(np.uint8)


@pytest.fixture
def fer_csv(tmp_path) -> Path:
    """fer2013.csv with Training/PublicTest/PrivateTest rows and two malformed rows."""
    rng = np.random.default_rng(0)
    lines = ["emotion,pixels,Usage"]
    for usage, n in (("Training", 70), ("PublicTest", 21), ("PrivateTest", 21)):
        for i in range(n):
            lab = i % 7
            lines.append(f"{lab},{' '.join(map(str, fer_image(lab, rng).ravel()))},{usage}")
    lines.append("3,1 2 3,Training")                      # too few pixels
    lines.append("9," + " ".join(["0"] * 2304) + ",Training")  # label out of range
    path = tmp_path / "fer2013" / "fer2013.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_fer_folders(root: Path, class_names: list[str], splits=("train", "test"), per_class=6,
                      corrupt: bool = False) -> Path:
    rng = np.random.default_rng(1)
    for split in splits:
        for lab, name in enumerate(class_names):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(fer_image(lab, rng)).save(d / f"{split}_{i}.{'png' if i % 2 else 'jpg'}")
    if corrupt:
        (root / "train" / class_names[0] / "broken.jpg").write_bytes(b"not a jpeg")
    return root


def reload_twice_and_compare(ckpt: Path):
    """Load ``ckpt`` twice, check both copies predict identically on a batch of the data
    config stored in the checkpoint, and return ``(model, batch)`` for further checks."""
    import torch
    from hydra.utils import instantiate

    from emomm.models.module import EmotionModule

    model = EmotionModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    dm = instantiate(model.hparams.data)
    dm.setup()
    batch = next(iter(dm.test_dataloader()))
    again = EmotionModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    with torch.no_grad():
        assert torch.equal(model(batch), again(batch))
    return model, batch
