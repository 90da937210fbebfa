"""Model backends behind the Predictor: one call from prepared inputs to logits.

A :class:`ModelRunner` exposes ``label_names``, ``modalities``, ``preprocessing`` (the
checkpoint's ``{modality: dict}``) and ``run(inputs, present, lengths)`` ->
``(fused logits [B, K], {modality: logits [B, K]})``. The per-modality logits are each
modality's own head (the "simple" prediction) where the model has them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class ModelRunner(Protocol):
    label_names: list[str]
    modalities: list[str]
    preprocessing: dict[str, Any]

    def run(self, inputs: dict[str, Any], present: dict[str, Any] | None = None,
            lengths: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        ...


class TorchRunner:
    """An :class:`~emomm.models.module.EmotionModule` in eval mode, test-time
    augmentation included (as the checkpoint was evaluated)."""

    def __init__(self, module, device: str | torch.device = "cpu") -> None:
        self.module = module.to(device).eval()
        self.device = torch.device(device)
        self.label_names = list(module.label_names)
        self.modalities = list(module.hparams.encoders)
        self.preprocessing = dict(module.hparams.get("preprocessing") or {})
        self.data = module.hparams.get("data")

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> "TorchRunner":
        from emomm.models.module import EmotionModule

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ckpt_path={path} does not exist; pass a checkpoint written by "
                                    "emomm.train (outputs/train/runs/<run>/checkpoints/best.ckpt)")
        return cls(EmotionModule.load_from_checkpoint(path, map_location="cpu"), device)

    def _to_device(self, d: dict[str, Any] | None) -> dict[str, Any]:
        return {m: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for m, v in (d or {}).items()}

    @torch.inference_mode()
    def run(self, inputs, present=None, lengths=None):
        """Fused logits ``[B, K]`` and ``{modality: [B, K]}`` (float32, on CPU)."""
        inputs, present, lengths = self._to_device(inputs), self._to_device(present), self._to_device(lengths)
        net = self.module.net
        if not hasattr(net, "forward_all"):  # models without per-modality heads
            logits = self.module({"inputs": inputs, "present": present, "lengths": lengths}).float().cpu()
            simple = {self.modalities[0]: logits} if len(self.modalities) == 1 else {}
            return logits, simple
        from emomm.models.tta import tta_views

        hp = self.module.hparams
        views = tta_views(inputs, hp.get("tta_hflip") or [], hp.get("tta_shift") or {})
        fused, simple = None, {}
        for view in views:
            out = net.forward_all(view, present, lengths)
            fused = out.logits.float() if fused is None else fused + out.logits.float()
            for m, lg in (out.modality_logits or {}).items():
                simple[m] = lg.float() if m not in simple else simple[m] + lg.float()
        n = len(views)
        return (fused / n).cpu(), {m: (v / n).cpu() for m, v in simple.items()}


def build_runner(path: str | Path, device: str = "cpu", backend: str = "torch") -> ModelRunner:
    """The runner for ``backend``: ``torch`` (a checkpoint) or ``onnxruntime`` (an export)."""
    if backend == "torch":
        return TorchRunner.from_checkpoint(path, device)
    if backend in ("onnxruntime", "onnx"):
        from emomm.inference.onnx_runner import OnnxRunner  # added by the export work

        load = getattr(OnnxRunner, "from_path", None) or OnnxRunner.from_checkpoint
        return load(path, device)
    raise ValueError(f"backend={backend!r} is not one of ['torch', 'onnxruntime']")
