"""`EmotionModule`: the one LightningModule for every modality and fusion.

It receives *configs* (plain dicts with ``_target_``), not built objects, and builds the
network itself. That makes checkpoints self-contained: ``EmotionModule.load_from_checkpoint``
rebuilds the exact model, and the hyper-parameters also carry the label names, the
preprocessing and the data config, so evaluation and prediction need only the checkpoint.
"""
from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from emomm.models.classifier import EmotionClassifier
from emomm.models.metrics import build_metrics, build_per_class
from emomm.models.tta import tta_views

log = logging.getLogger(__name__)

AUTO_STEPS = "auto"  # a scheduler argument set to this is replaced by the run's step count

#: Encoder arguments that only say where *initial* weights come from. A checkpoint holds the
#: trained weights, so reloading one resets these: it must not need (or download) the files
#: the run started from.
INIT_WEIGHT_ARGS = {"init_from": None, "pretrained_path": None, "pretrained": False}


class EmotionModule(L.LightningModule):
    """Args:
        label_names: ordered class names (from the DataModule).
        encoders: ``{modality: encoder config}``.
        fusion: fusion config (built with ``in_dims``).
        optimizer: optimizer config with ``_partial_: true``.
        scheduler: ``{"scheduler": partial config, "interval": "step"|"epoch",
            "monitor": ...}`` or None; scheduler args equal to ``"auto"`` get the total
            number of optimizer steps.
        class_weights: None, ``"balanced"`` (inverse train frequency) or a list.
        label_smoothing: cross-entropy label smoothing.
        head_dropout / head_hidden: classifier head.
        compile: compile the network in place (GPU; on CPU it paid 1.3x in hour-long runs).
        tta_hflip: modalities whose images are also scored mirrored at val/test/predict
            time, logits averaged (a cheap accuracy gain for faces; images ``[..., H, W]``).
        tta_shift: ``{modality: pixels}``: also score copies shifted that far in each
            direction (x5 views; x10 with hflip). Costs eval time, so recipes leave it off
            during training and ``emomm.eval`` can switch it on (``tta_shift={face:2}``).
        preprocessing / data: stored for evaluation and prediction.
    """

    def __init__(self, label_names: list[str], encoders: dict[str, Any], fusion: dict[str, Any],
                 optimizer: dict[str, Any], scheduler: dict[str, Any] | None = None,
                 class_weights: Any = None, label_smoothing: float = 0.0,
                 head_dropout: float = 0.2, head_hidden: int | None = None,
                 compile: bool = False, tta_hflip: list[str] | None = None,
                 tta_shift: dict[str, int] | None = None, monitor: str = "val/uar",
                 monitor_mode: str = "max",
                 preprocessing: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.label_names = list(label_names)
        k = len(self.label_names)
        self.net = EmotionClassifier(
            encoders={m: instantiate(c) for m, c in encoders.items()},
            fusion=instantiate(fusion, _partial_=True),
            num_classes=k, head_dropout=head_dropout, head_hidden=head_hidden)
        # ModuleDict keys cannot be "train" (it would shadow Module.train), hence the suffix.
        self.metrics = torch.nn.ModuleDict({f"{s}_split": build_metrics(k) for s in ("train", "val", "test")})
        self.per_class = torch.nn.ModuleDict({f"{s}_split": build_per_class(k) for s in ("val", "test")})
        # `from_pretrained` hands back models in eval mode and Lightning keeps modules' modes,
        # so without this a fine-tuned transformer would train with dropout silently off.
        # Encoders that freeze parts keep them in eval mode through their own `train()`.
        self.train()
        self.register_buffer("class_weight", torch.ones(k), persistent=False)
        self.best_val: dict[str, float] = {}
        # Set by `emomm.eval` when the data's label order differs from the model's:
        # data label i is scored as model label target_map[i].
        self.target_map: torch.Tensor | None = None
        self.test_results: dict[str, Any] = {}

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, **kwargs):  # type: ignore[override]
        """Rebuild the model from a checkpoint alone (see ``INIT_WEIGHT_ARGS``)."""
        if "encoders" not in kwargs:
            hparams = torch.load(checkpoint_path, map_location="cpu", weights_only=True)["hyper_parameters"]
            kwargs["encoders"] = {
                m: {k: (INIT_WEIGHT_ARGS[k] if k in INIT_WEIGHT_ARGS else v) for k, v in c.items()}
                for m, c in hparams["encoders"].items()}
        return super().load_from_checkpoint(checkpoint_path, map_location=map_location, **kwargs)

    # -- training plumbing ---------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit":
            # Encoders that learn something from the data before training (e.g. a tokenizer
            # trained on the training split) expose `fit_to_data(datamodule, modality)`.
            for m, enc in self.net.encoders.items():
                if callable(getattr(enc, "fit_to_data", None)):
                    enc.fit_to_data(self.trainer.datamodule, m)
        cw = self.hparams.class_weights
        if cw == "balanced" and stage == "fit":
            counts = torch.as_tensor(self.trainer.datamodule.class_counts("train"), dtype=torch.float)
            w = counts.sum() / (len(counts) * counts.clamp_min(1))
            self.class_weight = torch.where(counts > 0, w, torch.zeros_like(w)).to(self.device)
            log.info("balanced class weights: %s", [round(x, 3) for x in self.class_weight.tolist()])
        elif cw not in (None, "balanced"):
            if len(cw) != len(self.label_names):
                raise ValueError(f"model.class_weights has {len(cw)} values for {len(self.label_names)} classes")
            self.class_weight = torch.tensor(cw, dtype=torch.float, device=self.device)
        if self.hparams.compile and stage == "fit":
            # In place: `torch.compile(self.net)` would wrap the module and prefix every
            # checkpoint key with `_orig_mod.`, so the checkpoint would not load uncompiled.
            self.net.compile()

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        present, lengths = batch.get("present"), batch.get("lengths")
        if self.training:
            return self.net(batch["inputs"], present, lengths)
        views = tta_views(batch["inputs"], self.hparams.get("tta_hflip") or [],
                          self.hparams.get("tta_shift") or {})
        logits = self.net(views[0], present, lengths)
        for view in views[1:]:
            logits = logits + self.net(view, present, lengths)
        return logits / len(views)

    def _step(self, batch: dict[str, Any], split: str) -> torch.Tensor:
        logits = self(batch)
        if self.target_map is not None:
            batch = {**batch, "label": self.target_map.to(logits.device)[batch["label"]]}
        loss = F.cross_entropy(logits.float(), batch["label"], weight=self.class_weight,
                               label_smoothing=self.hparams.label_smoothing)
        preds = logits.argmax(-1)
        bs = batch["label"].shape[0]
        self.metrics[f"{split}_split"].update(preds, batch["label"])
        if f"{split}_split" in self.per_class:
            self.per_class[f"{split}_split"].update(preds, batch["label"])
        self.log(f"{split}/loss", loss, on_step=split == "train", on_epoch=True,
                 prog_bar=split != "test", batch_size=bs)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        return {"probs": self(batch).float().softmax(-1), "index": batch["index"],
                "label": batch["label"]}

    def _epoch_end(self, split: str) -> dict[str, float]:
        key = f"{split}_split"
        values = {k: float(v) for k, v in self.metrics[key].compute().items()}
        self.metrics[key].reset()
        if key in self.per_class:
            pc = self.per_class[key].compute()
            self.per_class[key].reset()
            for name, r in zip(self.label_names, pc["recall_per_class"].tolist()):
                values[f"recall/{name}"] = float(r)
            if split == "test":
                self.test_results["confmat"] = pc["confmat"].cpu().tolist()
        self.log_dict({f"{split}/{k}": v for k, v in values.items()},
                      prog_bar=False, sync_dist=True)
        self.log(f"{split}/uar_bar", values["uar"], prog_bar=True, logger=False)
        return values

    def on_train_epoch_end(self):
        self._epoch_end("train")

    def on_validation_epoch_end(self):
        values = self._epoch_end("val")
        if self.trainer.sanity_checking:
            return
        key = self.hparams.monitor.split("/", 1)[-1]
        if key not in values:  # e.g. val/loss: logged by the step, not the metric collection
            values[key] = float(self.trainer.callback_metrics.get(self.hparams.monitor, float("nan")))
        sign = 1.0 if self.hparams.get("monitor_mode", "max") == "max" else -1.0
        if not self.best_val or sign * values[key] > sign * self.best_val[key]:
            self.best_val = {**values, "epoch": self.current_epoch}

    def on_test_epoch_end(self):
        self.test_results["metrics"] = self._epoch_end("test")

    def configure_optimizers(self):
        opt = instantiate(self.hparams.optimizer)(params=[p for p in self.parameters() if p.requires_grad])
        sched_cfg = self.hparams.scheduler
        if not sched_cfg:
            return opt
        sched_cfg = dict(sched_cfg)
        factory = dict(sched_cfg.pop("scheduler"))
        for k, v in factory.items():
            if v == AUTO_STEPS:
                factory[k] = int(self.trainer.estimated_stepping_batches)
        return {"optimizer": opt,
                "lr_scheduler": {"scheduler": instantiate(factory)(optimizer=opt), **sched_cfg}}
