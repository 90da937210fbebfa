"""EMA of the weights (emomm.callbacks.ema.EMA): the average, validation and checkpoints."""
import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from emomm.callbacks.ema import EMA, RAW_KEY


class Toy(L.LightningModule):
    """A network with a parameter and BatchNorm buffers; validation records the weights it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
        self.seen: list[torch.Tensor] = []

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch, _):
        self.seen.append(self.net[0].weight.detach().clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


class Recorder(L.Callback):
    """The raw weights after every optimizer step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, *args):
        self.steps.append({k: v.detach().clone() for k, v in pl_module.net.state_dict().items()})


def loader(n=24, bs=4, shuffle=False):
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(n, 3, generator=g), torch.randn(n, 2, generator=g))
    return DataLoader(ds, batch_size=bs, shuffle=shuffle)


def fit(tmp_path, ema, epochs=2, **kw):
    torch.manual_seed(0)
    model, rec = Toy(), Recorder()
    init = {k: v.detach().clone() for k, v in model.net.state_dict().items()}
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = L.Trainer(max_epochs=epochs, callbacks=[rec, ema, ckpt], logger=False, accelerator="cpu",
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, **kw)
    trainer.fit(model, loader(), loader(8))
    return model, rec, init, trainer


def analytic(init, steps, decay, start_step=0, warmup=False):
    avg = {k: v.clone() for k, v in init.items()}
    for i, w in enumerate(steps):
        d = decay if i >= start_step else 0.0
        if warmup and i >= start_step:
            d = min(decay, (1 + i - start_step) / (10 + i - start_step))
        for k in avg:
            avg[k] = d * avg[k] + (1 - d) * w[k] if w[k].is_floating_point() else w[k].clone()
    return avg


def test_average_equals_the_analytic_ema(tmp_path):
    ema = EMA(decay=0.8)
    model, rec, init, _ = fit(tmp_path, ema)
    assert len(rec.steps) == 12 and ema.updates == 12
    want = analytic(init, rec.steps, 0.8)
    for k, v in want.items():                   # weights and BN running stats alike
        assert torch.allclose(ema.shadow[k], v, atol=1e-6), k
    assert not torch.allclose(want["0.weight"], rec.steps[-1]["0.weight"])  # it is not the last weights
    # start_epoch: the first epoch (6 steps) follows the weights, the second averages.
    ema2 = EMA(decay=0.8, start_epoch=1)
    _, rec2, init2, _ = fit(tmp_path / "b", ema2)
    assert torch.allclose(ema2.shadow["0.weight"], analytic(init2, rec2.steps, 0.8, 6)["0.weight"], atol=1e-6)
    # warmup: decay (1+n)/(10+n) at step n (below 0.95 for all 12 steps here).
    ema3 = EMA(decay=0.95, warmup=True)
    _, rec3, init3, _ = fit(tmp_path / "c", ema3)
    want3 = analytic(init3, rec3.steps, 0.95, warmup=True)
    assert torch.allclose(ema3.shadow["0.weight"], want3["0.weight"], atol=1e-6)
    assert not torch.allclose(want3["0.weight"], analytic(init3, rec3.steps, 0.95)["0.weight"])


def test_validation_and_checkpoints_use_the_average(tmp_path):
    ema = EMA(decay=0.8)
    model, rec, init, trainer = fit(tmp_path, ema)
    # Validation after epoch 2 saw the averaged weights; training continues from the raw ones.
    after = analytic(init, rec.steps, 0.8)
    assert torch.allclose(model.seen[-1], after["0.weight"], atol=1e-6)
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=False)
    sd, raw = ckpt["state_dict"], ckpt[RAW_KEY]
    for k, v in after.items():
        assert torch.allclose(sd[f"net.{k}"], v, atol=1e-6), k
        assert torch.allclose(raw[f"net.{k}"], rec.steps[-1][k], atol=1e-6), k
    # A model loaded from the checkpoint (what eval/predict do) holds the EMA weights.
    loaded = Toy()
    loaded.load_state_dict(sd)
    assert torch.allclose(loaded.net[0].weight, after["0.weight"], atol=1e-6)
    # ... and so does the module after fit (trainer.test without a checkpoint).
    assert torch.allclose(model.net[0].weight, after["0.weight"], atol=1e-6)


def test_resume_continues_from_the_raw_weights(tmp_path):
    ema = EMA(decay=0.8)
    fit(tmp_path, ema, epochs=1)
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=False)

    class Probe(L.Callback):
        def on_train_start(self, trainer, pl_module):
            self.weight = pl_module.net[0].weight.detach().clone()

    torch.manual_seed(1)
    model, resumed, probe = Toy(), EMA(decay=0.8), Probe()
    trainer = L.Trainer(max_epochs=2, callbacks=[resumed, probe], logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, num_sanity_val_steps=0, enable_model_summary=False)
    trainer.fit(model, loader(), loader(8), ckpt_path=tmp_path / "last.ckpt")
    assert torch.allclose(probe.weight, ckpt[RAW_KEY]["net.0.weight"])        # training resumed raw
    assert not torch.allclose(probe.weight, ckpt["state_dict"]["net.0.weight"])
    assert resumed.updates == 12 and resumed.averaged == 12                     # 6 saved + one more epoch


def test_decay_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="decay"):
        EMA(decay=1.0)


@pytest.mark.slow
def test_ema_with_a_network_compiled_in_place(tmp_path):
    """`model.compile=true` compiles `net` in place: the swaps copy into the same tensors, so
    validation runs the compiled graph on the averaged weights, without recompiling."""
    import torch._dynamo

    torch._dynamo.reset()

    class Compiled(Toy):
        def setup(self, stage):
            self.net.compile()

        def validation_step(self, batch, _):
            self.seen.append((self.net[0].weight.detach().clone(), self.net(batch[0]).detach()))

    torch.manual_seed(0)
    model, ema = Compiled(), EMA(decay=0.8)
    trainer = L.Trainer(max_epochs=2, callbacks=[ema], logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, num_sanity_val_steps=0, enable_model_summary=False)
    trainer.fit(model, loader(), loader(8))
    weight, logits = model.seen[-1]
    assert torch.allclose(weight, ema.shadow["0.weight"], atol=1e-6)
    eager = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).eval()
    eager.load_state_dict(ema.shadow)
    with torch.no_grad():
        assert torch.allclose(logits, eager(loader(8).dataset.tensors[0][4:8]), atol=1e-5)
    frames = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert frames <= 4, f"{frames} graphs: the weight swaps made dynamo recompile"


def test_raw_weights_load_from_an_ema_checkpoint_for_a_paired_eval(tmp_path):
    """``emomm.eval weights=raw``: the same checkpoint scored without the average."""
    from emomm.callbacks.ema import load_raw_weights

    fit(tmp_path, EMA(decay=0.8))
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=False)
    model = Toy()
    model.load_state_dict(ckpt["state_dict"])
    load_raw_weights(model, ckpt)
    for k, v in model.state_dict().items():
        assert torch.equal(v, ckpt[RAW_KEY][k]), k
    assert not torch.allclose(model.net[0].weight, ckpt["state_dict"]["net.0.weight"])
    plain = {"state_dict": ckpt["state_dict"]}  # a checkpoint trained without callbacks=ema
    with pytest.raises(ValueError, match="x.ckpt holds no raw weights.*callbacks=ema"):
        load_raw_weights(model, plain, "x.ckpt")
