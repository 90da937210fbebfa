"""`EmotionModule`: the one LightningModule for every modality and fusion.

It receives *configs* (plain dicts with ``_target_``), not built objects, and builds the
network itself. That makes checkpoints self-contained: ``EmotionModule.load_from_checkpoint``
rebuilds the exact model, and the hyper-parameters also carry the label names, the
preprocessing and the data config, so evaluation and prediction need only the checkpoint.
"""
from __future__ import annotations

import inspect
import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from emomm.models.classifier import EmotionClassifier, classifier_head
from emomm.models.layer_decay import decayed_groups
from emomm.models.metrics import build_metrics, build_per_class
from emomm.models.mixup import draw_mix, mix_batch, mixed_loss, mixed_targets, mixup_settings
from emomm.models.multimodal import (EncoderFreezer, GradientModulation, drop_modalities, init_encoders_from,
                                     modality_subsets, per_modality, subset_key)
from emomm.models.rdrop import rdrop_alpha, rdrop_loss
from emomm.models.tta import tta_views
from emomm.models.windows import WindowSpec, windowed_outputs
from emomm.utils.safe_load import (GIVE_A_RUN_CHECKPOINT, CheckpointError, UnsafeCheckpointError, load_checkpoint,
                                   read_checkpoint)
from emomm.utils.moved import upgrade_targets
from emomm.utils.targets import check_targets

log = logging.getLogger(__name__)

AUTO_STEPS = "auto"  # a scheduler argument set to this is replaced by the run's step count

#: Encoder arguments that only say where *initial* weights come from. A checkpoint holds the
#: trained weights, so reloading one resets these: it must not need (or download) the files
#: the run started from (``weights``: the GE2E encoder's Resemblyzer file; ``random`` builds
#: the layers without reading it).
INIT_WEIGHT_ARGS = {"init_from": None, "pretrained_path": None, "pretrained": False, "weights": "random"}


def own_rate_groups(groups: list[dict[str, Any]], optimizer: dict[str, Any]) -> list[dict[str, Any]]:
    """Move parameters that carry an ``lr_scale`` attribute (set by their encoder, e.g. the
    batch-norm biases of :class:`~emomm.models.encoders.whitened_cnn.WhitenedCNN`) into groups
    of their own at ``lr_scale`` x their group's rate and ``weight_decay / lr_scale`` (so a
    step decays them as much as their neighbours). Other groups are returned unchanged."""
    lr, wd = float(optimizer["lr"]), float(optimizer.get("weight_decay") or 0.0)
    out: list[dict[str, Any]] = []
    for g in groups:
        scales: dict[float, list] = {}
        for p in g["params"]:
            scales.setdefault(float(getattr(p, "lr_scale", 1.0)), []).append(p)
        for s, params in scales.items():
            if s == 1.0:
                out.append({**g, "params": params})
            else:
                out.append({**g, "params": params, "lr": g.get("lr", lr) * s,
                            "weight_decay": g.get("weight_decay", wd) / s})
    return [g for g in out if g["params"]]


def build_balancer(balance: dict[str, Any] | None) -> GradientModulation | None:
    """``model.balance``: null, or ``{method: ogm_ge, alpha, noise, start_epoch, end_epoch}``."""
    if not balance:
        return None
    args = dict(balance)
    method = args.pop("method", "ogm_ge")
    if method != "ogm_ge":
        raise ValueError(f"model.balance.method={method!r}: the one method offered is ogm_ge")
    return GradientModulation(**args)


def aux_task_weights(aux_tasks: dict[str, float] | None, names: dict[str, list[str]] | None,
                     mixup: bool = False) -> dict[str, float]:
    """``model.aux_tasks`` checked against the data's auxiliary labels: ``{task: weight}``.
    A task whose weight is null is off: a dict given on the command line merges into the
    recipe's (Hydra), so ``model.aux_tasks.intensity=null`` is how one head is dropped."""
    tasks = {str(t): float(w) for t, w in (aux_tasks or {}).items() if w is not None}
    offered = dict(names or {})
    for task, weight in tasks.items():
        if task not in offered:
            choice = (f"they carry {sorted(offered)}: pick among those" if offered else
                      "they carry none (MELD carries sentiment; RAVDESS intensity and sex; CREMA-D level and sex): "
                      "set model.aux_tasks=null")
            raise ValueError(f"model.aux_tasks has {task!r}, but this dataset's samples do not carry it; {choice}")
        if weight <= 0:
            raise ValueError(f"model.aux_tasks.{task}={weight}: give a weight > 0 (e.g. 0.5), or null to leave the task out")
    if tasks and mixup:
        raise ValueError("model.aux_tasks with model.mixup: mixed samples have no single auxiliary label; "
                         "use one of the two")
    return tasks


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
            instead of the centre crop alone (see ``emomm.models.tta.tta_views``).
        aux_loss_weight: multimodal models: weight of the per-modality heads' losses (the
            "simple" predictions), averaged over modalities, added to the fused loss.
        modality_dropout: ``rate`` or ``{modality: rate}``: in training, mask a modality out
            of that share of samples (never all of a sample's modalities).
        init_from: ``{modality: checkpoint}``: that encoder (and its head) starts from a
            finished run, e.g. the FER2013 and RAVDESS recipes' best.ckpt.
        freeze_epochs: ``N`` or ``{modality: N}``: those encoders stay fixed for N epochs.
        balance: ``{"method": "ogm_ge", "alpha": 0.5, "noise": true, "start_epoch": 0,
            "end_epoch": null}``: gradient modulation of the dominant modality (OGM-GE).
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
        preprocessing / data: stored for evaluation and prediction.
    """

    def __init__(self, label_names: list[str], encoders: dict[str, Any], fusion: dict[str, Any],
                 optimizer: dict[str, Any], scheduler: dict[str, Any] | None = None,
                 class_weights: Any = None, label_smoothing: float = 0.0,
                 head_dropout: float = 0.2, head_hidden: int | None = None, head_bias: bool = True,
                 compile: bool = False, tta_hflip: list[str] | None = None,
                 tta_shift: dict[str, int] | None = None, tta_tencrop: list[str] | None = None,
                 monitor: str = "val/uar",
                 monitor_mode: str = "max", aux_loss_weight: float = 0.5,
                 modality_dropout: float | dict[str, float] | None = None,
                 init_from: dict[str, str] | None = None,
                 freeze_epochs: int | dict[str, int] | None = None,
                 balance: dict[str, Any] | None = None, head_lr_scale: float = 1.0,
                 layer_lr_decay: float | None = None, mixup: dict[str, float] | None = None,
                 aux_tasks: dict[str, float] | None = None,
                 aux_label_names: dict[str, list[str]] | None = None, rdrop: float | None = None,
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
        self.modality_dropout = per_modality(modality_dropout, mods, "modality_dropout")
        if init_from:
            init_encoders_from(self.net, init_from, self.label_names)
        self.freezer = EncoderFreezer(per_modality(freeze_epochs, mods, "freeze_epochs"))
        self.balancer = build_balancer(balance)
        self.mixup = mixup_settings(mixup)
        self.aux_tasks = aux_task_weights(aux_tasks, aux_label_names, self.mixup is not None)
        self.rdrop = rdrop_alpha(rdrop)
        if self.rdrop and self.mixup is not None:
            raise ValueError("model.rdrop with model.mixup: R-Drop compares two passes over the same "
                             "samples, mixup changes them per pass; use one of the two")
        if self.aux_tasks and self.net.decision_level:
            raise ValueError("model.aux_tasks needs a fused embedding, which late (decision-level) fusion "
                             "has not; use fusion=auto|concat|gated|attention")
        # On the LightningModule, not in `net`: prediction and export never run them.
        self.aux_heads = torch.nn.ModuleDict(
            {t: classifier_head(int(self.net.fusion.out_dim), len(aux_label_names[t]), head_dropout, None)
             for t in self.aux_tasks})
        self.subsets = modality_subsets(mods) if self.multimodal else []
        # ModuleDict keys cannot be "train" (it would shadow Module.train), hence the suffix.
        self.metrics = torch.nn.ModuleDict({f"{s}_split": build_metrics(k) for s in ("train", "val", "test")})
        self.per_class = torch.nn.ModuleDict({f"{s}_split": build_per_class(k) for s in ("val", "test")})
        # Multimodal runs also score each modality's own head (val, test) and the fused head
        # on every subset of modalities (test). Metric states are not saved in checkpoints.
        self.part_metrics = torch.nn.ModuleDict(
            {f"{s}_mod_{m}": build_metrics(k) for s in ("val", "test") for m in mods if self.multimodal}
            | {f"test_sub_{subset_key(c)}": build_metrics(k) for c in self.subsets})
        self.part_counts: dict[str, int] = {}
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
        self._test_samples: list[tuple[torch.Tensor, torch.Tensor]] = []

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, **kwargs):  # type: ignore[override]
        """Rebuild the model from a checkpoint alone (see ``INIT_WEIGHT_ARGS``).

        The file is read once; before anything is built, :func:`checked_hparams` refuses a
        pickle, a ``_target_`` outside the allow-list (:mod:`emomm.utils.targets`) and
        incomplete hyper-parameters, and Lightning then rebuilds from those same bytes.
        Every failure is a :class:`~emomm.utils.safe_load.CheckpointError` naming the file."""
        path = Path(checkpoint_path).expanduser()
        data = read_checkpoint(path)
        hparams = checked_hparams(load_checkpoint(path, data=data), path)  # refuses pickled code
        if "encoders" not in kwargs:
            kwargs["encoders"] = {
                m: {k: (INIT_WEIGHT_ARGS[k] if k in INIT_WEIGHT_ARGS else v) for k, v in c.items()}
                for m, c in hparams["encoders"].items()}
        kwargs.setdefault("init_from", None)  # the trained weights are in the checkpoint
        # Lightning rebuilds from the stored hyper_parameters updated by kwargs: passing the
        # upgraded ones (emomm.utils.moved: names that moved since it was written) wins.
        kwargs = {k: v for k, v in hparams.items() if k not in kwargs} | kwargs
        kwargs["weights_only"] = True
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

    # -- training plumbing ---------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit":
            # Encoders that learn something from the data before training (e.g. a tokenizer
            # trained on the training split) expose `fit_to_data(datamodule, modality)`.
            for m, enc in self.net.encoders.items():
                if callable(getattr(enc, "fit_to_data", None)):
                    enc.fit_to_data(self.trainer.datamodule, m)
            self._check_aux_labels()
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

    def _check_aux_labels(self) -> None:
        """Refuse an auxiliary task that no training sample has a label for: its head would
        never learn (e.g. ``level`` on CREMA-D clips that are all ``XX``, unspecified)."""
        dm = getattr(self._trainer, "datamodule", None)
        if not self.aux_tasks or not callable(getattr(dm, "aux_counts", None)):
            return
        counts = dm.aux_counts("train")
        empty = [t for t in self.aux_tasks if counts.get(t, 1) == 0]
        if empty:
            raise ValueError(f"model.aux_tasks has {empty}, but none of the {len(dm.splits['train'])} "
                             "training samples carries a label for it; leave it out of model.aux_tasks")

    @property
    def window_spec(self) -> WindowSpec | None:
        """The voice eval windows of the stored preprocessing, parsed once (not per batch)."""
        if not hasattr(self, "_window_spec"):
            self._window_spec = WindowSpec.from_preprocessing(self.hparams.get("preprocessing"))
        return self._window_spec

    def outputs(self, batch: dict[str, Any], subsets: list[tuple[str, ...]] = (),
                windows: bool = True, aux: bool = False) -> dict[str, torch.Tensor]:
        """Logits ``[B, K]`` by name: ``fused``, ``modality/<m>`` (each modality's own head),
        ``aux/<task>`` (with ``aux`` and ``aux_tasks``: the auxiliary heads, ``[B, K_task]``)
        and ``subset/<a+b>`` (the fused head with every other modality masked out), averaged
        over the test-time views outside training, and over each voice clip's windows when
        the preprocessing has ``voice.eval_windows`` (:mod:`emomm.models.windows`)."""
        spec = self.window_spec if windows and not self.training else None
        if spec is not None and isinstance(batch["inputs"].get("voice"), torch.Tensor) \
                and batch["inputs"]["voice"].dim() == 2:
            return windowed_outputs(lambda b: self.outputs(b, subsets, windows=False, aux=aux), batch, spec)
        present, lengths = batch.get("present") or {}, batch.get("lengths")
        views = [batch["inputs"]] if self.training else tta_views(
            batch["inputs"], self.hparams.get("tta_hflip") or [], self.hparams.get("tta_shift") or {},
            self.eval_crop, self.hparams.get("tta_tencrop") or [])
        total: dict[str, torch.Tensor] = {}
        for view in views:
            if aux and self.aux_heads:
                out = self._aux_outputs(view, present, lengths)
            elif not self.multimodal:  # the compiled forward; one prediction serves as both
                fused = self.net(view, present, lengths)
                out = {"fused": fused, f"modality/{self.net.modalities[0]}": fused}
            else:
                feats, pres = self.net.encode(view, present, lengths)
                heads = self.net.heads(feats)
                out = {"fused": self.net.fuse(feats, pres, heads)}
                out |= {f"modality/{m}": v for m, v in heads.items()}
                for c in subsets:
                    masked = {m: p if m in c else torch.zeros_like(p) for m, p in pres.items()}
                    out[f"subset/{subset_key(c)}"] = self.net.fuse(feats, masked, heads)
            total = out if not total else {k: total[k] + v for k, v in out.items()}
        return {k: v / len(views) for k, v in total.items()}

    def _aux_outputs(self, view: dict, present: dict, lengths) -> dict[str, torch.Tensor]:
        """The fused, per-modality and auxiliary logits of one view, through the fused
        embedding (the uncompiled path: the auxiliary heads need the embedding)."""
        feats, pres = self.net.encode(view, present, lengths)
        fused, emb = self.net.fuse_embedded(feats, pres)
        heads = self.net.heads(feats) if self.multimodal else {self.net.modalities[0]: fused}
        return ({"fused": fused} | {f"modality/{m}": v for m, v in heads.items()}
                | {f"aux/{t}": head(emb) for t, head in self.aux_heads.items()})

    def _aux_loss(self, out: dict[str, torch.Tensor], batch: dict[str, Any], split: str) -> torch.Tensor:
        """Weighted sum of the auxiliary tasks' cross-entropies (labels -1 left out); logs
        each task's loss, and at validation its accuracy."""
        targets = batch.get("aux") or {}
        total = out["fused"].new_zeros(())
        for task, weight in self.aux_tasks.items():
            if task not in targets:
                raise ValueError(f"model.aux_tasks has {task!r} but the batches carry no {task!r} labels "
                                 f"(they carry {sorted(targets) or 'none'})")
            y, logits = targets[task].to(out["fused"].device), out[f"aux/{task}"]
            known = y >= 0
            if not known.any():  # (zero, but in the graph: DDP expects a gradient for every head)
                total = total + 0.0 * logits.sum()
                continue
            loss = F.cross_entropy(logits[known].float(), y[known])
            n = int(known.sum())
            self.log(f"{split}/aux_{task}_loss", loss, on_step=False, on_epoch=True, batch_size=n)
            if split != "train":
                acc = (logits[known].argmax(-1) == y[known]).float().mean()
                self.log(f"{split}/aux_{task}_acc", acc, on_step=False, on_epoch=True, batch_size=n)
            total = total + weight * loss
        return total

    @property
    def eval_crop(self) -> dict[str, int]:
        """``{modality: crop_size}`` of modalities trained on random crops: eval inputs are
        whole images and are cropped to this size (from the stored preprocessing)."""
        prep = self.hparams.get("preprocessing") or {}
        return {m: int(p["crop_size"]) for m, p in prep.items() if isinstance(p, dict) and p.get("crop_size")}

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Fused logits ``[B, K]``."""
        return self.outputs(batch)["fused"]

    def _labels(self, batch: dict[str, Any], device) -> torch.Tensor:
        if self.target_map is not None:
            return self.target_map.to(device)[batch["label"]]
        return batch["label"]

    def _ce(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels, weight=self.class_weight,
                               label_smoothing=self.hparams.label_smoothing)

    def _step(self, batch: dict[str, Any], split: str) -> torch.Tensor:
        mix = None
        if split == "train" and self.mixup is not None:
            mix = draw_mix(*self.mixup, batch["label"].shape[0], batch["label"].device)
            batch = mix_batch(batch, mix) if mix is not None else batch
        present = {m: p for m, p in (batch.get("present") or {}).items()}
        for m in self.net.modalities:  # a modality the whole batch lacks
            if m not in batch["inputs"]:
                present[m] = torch.zeros(batch["label"].shape[0], dtype=torch.bool, device=batch["label"].device)
        fused_present = drop_modalities(present, self.modality_dropout) if split == "train" else present
        out = self.outputs({**batch, "present": fused_present}, self.subsets if split == "test" else [],
                           aux=bool(self.aux_tasks) and split != "test")
        labels = self._labels(batch, out["fused"].device)
        bs = labels.shape[0]
        if split == "train" and self.rdrop:  # a second pass: other dropout masks, same samples
            second = self.outputs({**batch, "present": fused_present})["fused"]
            loss, kl = rdrop_loss(self._ce, out["fused"], second, labels, self.rdrop)
            self.log("train/rdrop_kl", kl, on_step=False, on_epoch=True, batch_size=bs)
        else:
            loss = mixed_loss(self._ce, out["fused"], labels, mix)
        if self.aux_tasks and split != "test":  # val logs the tasks; its loss stays the emotion's
            aux_loss = self._aux_loss(out, batch, split)
            loss = loss + aux_loss if split == "train" else loss
        if self.multimodal and self.hparams.get("aux_loss_weight", 0.0):
            aux = [mixed_loss(lambda lg, y, p=p: self._ce(lg[p], y[p]), out[f"modality/{m}"], labels, mix)
                   for m, p in present.items() if m in self.net.modalities and p.any()]
            if aux:
                aux_loss = torch.stack(aux).mean()
                loss = loss + self.hparams.aux_loss_weight * aux_loss
                self.log(f"{split}/aux_loss", aux_loss, on_step=False, on_epoch=True, batch_size=bs)
        if split == "train" and self.balancer is not None and self.multimodal:
            # under mixup a sample's target is the mix of two labels, not its first one
            targets = labels if mix is None else mixed_targets(labels, out["fused"].shape[-1], mix)
            self.balancer.measure({m: out[f"modality/{m}"] for m in self.net.modalities}, present, targets)
        preds = out["fused"].argmax(-1)
        if mix is not None and mix.lam < 0.5:  # train metrics: the label with the larger share
            labels = labels[mix.perm]
        self.metrics[f"{split}_split"].update(preds, labels)
        if split == "test":  # per-sample, in loader order: per-group metrics (emomm.analysis.groups)
            self._test_samples.append((preds.detach().cpu(), labels.detach().cpu()))
        if f"{split}_split" in self.per_class:
            self.per_class[f"{split}_split"].update(preds, labels)
        if split != "train" and self.multimodal:
            for m in self.net.modalities:
                self._update_part(f"{split}_mod_{m}", out[f"modality/{m}"], labels, present[m])
            for c in self.subsets if split == "test" else []:
                mask = torch.stack([present[m] for m in c], 1).all(1)
                self._update_part(f"test_sub_{subset_key(c)}", out[f"subset/{subset_key(c)}"], labels, mask)
        self.log(f"{split}/loss", loss, on_step=split == "train", on_epoch=True,
                 prog_bar=split != "test", batch_size=bs)
        return loss

    def _update_part(self, key: str, logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> None:
        """Score ``logits`` on the samples of ``mask`` only (those that have the modalities)."""
        mask = mask.to(labels.device)
        if mask.any():
            self.part_metrics[key].update(logits[mask].argmax(-1), labels[mask])
            self.part_counts[key] = self.part_counts.get(key, 0) + int(mask.sum())

    def _parts_end(self, split: str) -> None:
        """Log each modality's own metrics; at test, keep them and the subset table."""
        if not self.multimodal:
            return
        groups = {"modalities": {m: f"{split}_mod_{m}" for m in self.net.modalities},
                  "subsets": {subset_key(c): f"test_sub_{subset_key(c)}" for c in self.subsets} if split == "test" else {}}
        for group, keys in groups.items():
            table = {}
            for name, key in keys.items():
                n = self.part_counts.pop(key, 0)
                if n:
                    table[name] = {k: float(v) for k, v in self.part_metrics[key].compute().items()} | {"n": n}
                self.part_metrics[key].reset()
            if group == "modalities":
                self.log_dict({f"{split}/{m}/{k}": v for m, r in table.items() for k, v in r.items() if k != "n"},
                              sync_dist=True)
            if split == "test":
                self.test_results[group] = table

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
        self._parts_end("val")
        if self.trainer.sanity_checking:
            return
        key = self.hparams.monitor.split("/", 1)[-1]
        if key not in values:  # e.g. val/loss: logged by the step, not the metric collection
            values[key] = float(self.trainer.callback_metrics.get(self.hparams.monitor, float("nan")))
        sign = 1.0 if self.hparams.get("monitor_mode", "max") == "max" else -1.0
        if not self.best_val or sign * values[key] > sign * self.best_val[key]:
            self.best_val = {**values, "epoch": self.current_epoch}

    def on_test_epoch_start(self):
        self._test_samples = []

    def on_test_epoch_end(self):
        self.test_results["metrics"] = self._epoch_end("test")
        pairs = getattr(self, "_test_samples", [])
        self.test_results["samples"] = {"pred": torch.cat([p for p, _ in pairs]).tolist() if pairs else [],
                                        "target": torch.cat([t for _, t in pairs]).tolist() if pairs else []}
        self._parts_end("test")

    # -- multimodal training aids --------------------------------------------------------
    def on_train_epoch_start(self):
        self.freezer.update(self.net.encoders, self.current_epoch)

    def on_train_batch_start(self, batch, batch_idx):
        for m in self.freezer.frozen(self.current_epoch):  # Lightning's train() resets modes
            self.net.encoders[m].eval()

    def on_before_optimizer_step(self, optimizer):
        if self.balancer is not None and self.multimodal and self.balancer.active(self.current_epoch):
            self.balancer.apply(self.net.encoders)
            if self.balancer.coeffs:
                self.log_dict({f"train/ogm_{m}": c for m, c in self.balancer.coeffs.items()},
                              on_step=False, on_epoch=True)

    def param_groups(self) -> list[dict[str, Any]]:
        """The trainable parameters as optimizer groups: encoders at ``optimizer.lr``, the
        rest (fusion, heads) at ``head_lr_scale`` times it; with ``layer_lr_decay`` d < 1,
        the blocks of encoders that have ``layer_groups()`` (transformers) at ``lr * d**k``,
        k blocks below the top one. One group when neither applies. Parameters with an
        ``lr_scale`` attribute then get groups of their own (:func:`own_rate_groups`).
        Schedulers scale every group's rate alike."""
        scale = self.hparams.get("head_lr_scale")
        scale = 1.0 if scale is None else float(scale)  # None: checkpoints from before the option
        decay = self.hparams.get("layer_lr_decay")
        decay = 1.0 if decay is None else float(decay)
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"model.layer_lr_decay={decay}: give a factor in (0, 1] (e.g. 0.8), or null for none")
        trainable = [p for p in self.parameters() if p.requires_grad]
        if scale == 1.0 and decay == 1.0:
            return own_rate_groups([{"params": trainable}], self.hparams.optimizer)
        lr = float(self.hparams.optimizer["lr"])
        in_encoders = {id(p) for p in self.net.encoders.parameters() if p.requires_grad}
        groups: list[dict[str, Any]] = []
        if decay < 1.0:
            layered = [enc for enc in self.net.encoders.values() if hasattr(enc, "layer_groups")]
            if not layered:
                raise ValueError(f"model.layer_lr_decay={decay} but no encoder of this model has "
                                 f"transformer layers ({', '.join(self.net.modalities)}); set it to null")
            for enc in layered:
                groups += decayed_groups(enc.layer_groups(), lr, decay, keep=in_encoders)
        placed = {id(p) for g in groups for p in g["params"]}
        groups.append({"params": [p for p in trainable if id(p) in in_encoders and id(p) not in placed]})
        groups.append({"params": [p for p in trainable if id(p) not in in_encoders], "lr": lr * scale})
        return own_rate_groups([g for g in groups if g["params"]], self.hparams.optimizer)

    def configure_optimizers(self):
        opt = instantiate(self.hparams.optimizer)(params=self.param_groups())
        sched_cfg = self.hparams.scheduler
        if not sched_cfg:
            return opt
        sched_cfg = dict(sched_cfg)
        factory = dict(sched_cfg.pop("scheduler"))
        total = int(self.trainer.estimated_stepping_batches)
        for k, v in factory.items():
            if v == AUTO_STEPS:  # `steps_per_epoch: auto` lets a schedule count in epochs
                factory[k] = (max(1, total // max(1, self.trainer.max_epochs or 1))
                              if k == "steps_per_epoch" else total)
        return {"optimizer": opt,
                "lr_scheduler": {"scheduler": instantiate(factory)(optimizer=opt), **sched_cfg}}


#: Where Lightning reads a module's constructor arguments from in a checkpoint (the last two
#: are legacy keys it still merges in).
HPARAMS_KEYS = ("hyper_parameters", "hparams", "module_arguments")


def checked_hparams(ckpt: Mapping[str, Any], path: str | Path) -> dict[str, Any]:
    """The ``hyper_parameters`` of the loaded checkpoint ``ckpt`` (read from ``path``), once
    the whole checkpoint passed :func:`~emomm.utils.targets.check_targets` (every ``_target_``
    at any depth is one of emomm's building blocks; no interpolation) and holds what
    :class:`EmotionModule` needs: weights, and the constructor arguments without defaults
    (``label_names``, ``encoders``, ``fusion``, ``optimizer``), each of the right kind, and
    no weight is NaN. A :class:`~emomm.utils.safe_load.CheckpointError` naming the file and the fix otherwise.
    Names that moved since the checkpoint was written are upgraded first (:mod:`emomm.utils.moved`)."""
    ckpt = upgrade_targets(ckpt)
    check_targets(ckpt, path)
    for key in HPARAMS_KEYS:
        if isinstance(ckpt.get(key), Mapping) and "_instantiator" in ckpt[key]:
            raise UnsafeCheckpointError(
                f"{path}: refused to load: {key}._instantiator = {ckpt[key]['_instantiator']!r} asks Lightning to "
                "build the model with another function; emomm.train never writes one. Only load checkpoints "
                "from sources you trust.")
    hp = ckpt.get("hyper_parameters")
    if not isinstance(hp, Mapping) or not hp:
        raise CheckpointError(
            f"{path}: holds no hyper_parameters, so the model it was trained as cannot be rebuilt (a bare "
            f"state_dict, or a checkpoint of another program?); {GIVE_A_RUN_CHECKPOINT}")
    if not isinstance(ckpt.get("state_dict"), Mapping):
        raise CheckpointError(f"{path}: holds no weights (no state_dict; it has {sorted(map(str, ckpt))[:8]}); "
                              f"{GIVE_A_RUN_CHECKPOINT}")
    nan = [k for k, v in ckpt["state_dict"].items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and bool(torch.isnan(v).any())]
    if nan:
        raise CheckpointError(
            f"{path}: {len(nan)} weight tensor(s) hold NaN (first: {nan[0]}), so every prediction would be "
            "meaningless: the training diverged (try a lower model.optimizer.lr, or trainer.gradient_clip_val=1) "
            f"or the file was edited; {GIVE_A_RUN_CHECKPOINT} from before the divergence")
    required = [n for n, p in inspect.signature(EmotionModule.__init__).parameters.items()
                if n != "self" and p.default is p.empty]
    missing = [k for k in required if hp.get(k) is None or (isinstance(hp[k], (str, list, tuple, Mapping)) and not hp[k])]
    if missing:
        raise CheckpointError(
            f"{path}: its hyper_parameters lack {missing} (they have {sorted(map(str, hp))}), so the model "
            f"cannot be rebuilt; the checkpoint is incomplete or was edited: {GIVE_A_RUN_CHECKPOINT}")
    problems = []
    if not isinstance(hp["label_names"], (list, tuple)) or not all(isinstance(n, str) for n in hp["label_names"]):
        problems.append("label_names must be a list of class names")
    encoders = hp["encoders"]
    if not isinstance(encoders, Mapping) or not all(isinstance(c, Mapping) and isinstance(c.get("_target_"), str)
                                                   for c in encoders.values()):
        problems.append("encoders must map each modality to a config with a _target_")
    for key in ("fusion", "optimizer"):
        if not isinstance(hp[key], Mapping) or not isinstance(hp[key].get("_target_"), str):
            problems.append(f"{key} must be a config with a _target_")
    if problems:
        raise CheckpointError(f"{path}: its hyper_parameters are malformed ({'; '.join(problems)}); the checkpoint "
                              f"was edited or written by another program: {GIVE_A_RUN_CHECKPOINT}")
    return dict(hp)
