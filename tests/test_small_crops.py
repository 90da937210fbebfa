"""Smaller training crops in the first epochs (emomm/callbacks/small_crops.py), and the last epoch
validated whatever the validation interval (emomm/callbacks/last_epoch.py), which the recipe needs."""
from types import SimpleNamespace

import pytest
import torch

from emomm.models.encoders.whitened_cnn import WhitenedCNN
from emomm.train import train
from emomm.callbacks.last_epoch import ValidateLastEpoch
from emomm.callbacks.small_crops import SmallCrops, random_crops
from tests.conftest import FER_ORDER, write_fer_folders


def test_each_image_gets_its_own_crop_from_every_position():
    x = torch.arange(64 * 2 * 6 * 6, dtype=torch.float32).reshape(64, 2, 6, 6)
    out = random_crops(x, 4, torch.Generator().manual_seed(0))
    assert out.shape == (64, 2, 4, 4)
    seen = set()
    for i in range(64):
        spots = [(t, l) for t in range(3) for l in range(3) if torch.equal(out[i], x[i, :, t:t + 4, l:l + 4])]
        assert len(spots) == 1  # a crop of this very image, both channels from one place
        seen.add(spots[0])
    assert seen == {(t, l) for t in range(3) for l in range(3)}
    assert random_crops(x, 6) is x
    with pytest.raises(ValueError, match="small_crops size=7"):
        random_crops(x, 7)


def test_only_the_first_epochs_train_on_small_crops():
    cb = SmallCrops(size=32, epochs=2)
    for epoch, side in ((0, 32), (1, 32), (2, 40)):
        batch = {"inputs": {"face": torch.randn(4, 1, 40, 40), "voice": torch.randn(4, 16000)}, "label": torch.zeros(4)}
        cb.on_train_batch_start(SimpleNamespace(current_epoch=epoch), None, batch, 0)
        assert batch["inputs"]["face"].shape[-1] == side
        assert batch["inputs"]["voice"].shape == (4, 16000)
    with pytest.raises(ValueError, match="epochs=-1"):
        SmallCrops(size=32, epochs=-1)


def test_fer2013_fast_trains_on_small_crops_then_the_full_crop(cfg_factory, tmp_path, monkeypatch):
    """Through the real recipe: the network sees 32 px crops in epoch 0 and 40 px in epoch 1,
    while validation keeps the 40 px centre crop; the recipe validates every 6th epoch, yet
    the last of these 2 is validated and saved."""
    root = write_fer_folders(tmp_path / "fer", FER_ORDER, splits=("train", "val", "test"), per_class=8)
    cfg = cfg_factory(["experiment=fer2013_fast", f"data.root={root}", "data.batch_size=16",
                       "trainer.max_epochs=2", "model.compile=false", "model.encoders.face.widths=[8,16,16]",
                       "logger=csv", "callbacks.small_crops.epochs=1"])
    seen = []
    feature_map = WhitenedCNN.feature_map

    def spy(self, x):
        seen.append((self.training, x.shape[-1]))
        return feature_map(self, x)

    monkeypatch.setattr(WhitenedCNN, "feature_map", spy)
    summary = train(cfg)
    assert summary["best_ckpt"].endswith("best.ckpt") and summary["best_val"]["epoch"] == 1
    train_sides = [s for t, s in seen if t]
    assert train_sides[0] == 32 and train_sides[-1] == 40 and set(train_sides) == {32, 40}
    assert {s for t, s in seen if not t} == {40}


def test_the_last_epoch_is_validated_whatever_the_interval():
    cb = ValidateLastEpoch()
    for epoch, n, expected in ((8, 6, 6), (9, 6, 1), (9, 1, 1), (9, None, None)):
        trainer = SimpleNamespace(check_val_every_n_epoch=n, max_epochs=10, current_epoch=epoch)
        cb.on_train_epoch_start(trainer, None)
        assert trainer.check_val_every_n_epoch == expected
    unbounded = SimpleNamespace(check_val_every_n_epoch=6, max_epochs=-1, current_epoch=0)
    cb.on_train_epoch_start(unbounded, None)
    assert unbounded.check_val_every_n_epoch == 6
