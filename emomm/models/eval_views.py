"""Test-time views: what evaluation and prediction average a batch's logits over.

Shared by :meth:`emomm.models.module.EmotionModule.outputs` (val, test, ``emomm.eval``),
the ``Predictor`` (through the module) and ONNX export (:func:`tta_views`).

**Augmented views** (``model.tta_hflip``, ``tta_shift``, ``tta_tencrop``): pure functions of
the inputs (no randomness), so evaluation stays deterministic. Images are tensors
``[..., C, H, W]`` (faces ``[B, C, H, W]``, face clips ``[B, T, C, H, W]``).

**Windows** of voice clips (``voice.eval_windows``): one prediction per clip from all its
windows.

Training sees random crops of ``voice.duration`` seconds; a single centre crop at evaluation
throws away the rest of a longer clip. With ``voice.eval_windows: {hop_s, window_s}`` the
evaluation data serve whole clips (padded batches with lengths) and the model

1. cuts every clip of the batch into windows of ``window_s`` (default: the training crop)
   starting every ``hop_s`` seconds, plus one window ending at the clip's end when the hops
   do not reach it (so every sample is seen; :func:`window_starts`),
2. runs all windows of the batch through the network as one larger batch (chunked, see
   ``max_windows``), every other modality of a window's clip repeated alongside it,
3. averages the **logits** of each clip's windows (a mean of logits, i.e. a geometric mean
   of the window probabilities up to normalisation: one confident window does not outvote
   the rest as it can with a mean of probabilities, and it matches how test-time views are
   averaged (:func:`mean_outputs`)).

A clip no longer than a window is one window, the clip itself: the result equals the single
centre-crop evaluation. Everything is per sample, so DDP and the per-clip metrics see one
prediction per clip, exactly as without windows.

**Logits by name** (:func:`view_logits`): ``fused``, ``modality/<m>``, ``subset/<a+b>`` and
``aux/<task>`` of one view, and their mean over views (:func:`mean_outputs`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from emomm.models.multimodal import subset_key


# -- augmented views ---------------------------------------------------------------------------

def shift_image(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """``x`` moved ``dx`` px right and ``dy`` px down, same shape; the uncovered border
    repeats the edge pixels (black borders would be a cue the model never saw in training)."""
    if dx == 0 and dy == 0:
        return x
    pad = max(abs(dx), abs(dy))
    h, w = x.shape[-2:]
    flat = x.reshape(-1, *x.shape[-3:])  # replicate padding wants [N, C, H, W]
    padded = F.pad(flat, (pad, pad, pad, pad), mode="replicate")
    out = padded[..., pad - dy: pad - dy + h, pad - dx: pad - dx + w]
    return out.reshape(x.shape)


def crop_image(x: torch.Tensor, size: int, where: str = "center") -> torch.Tensor:
    """The ``size`` x ``size`` crop of ``x [..., H, W]`` at ``where``: ``center``, or a corner
    ``tl``/``tr``/``bl``/``br``. The centre rounds down to the top-left, as torchvision's
    CenterCrop does."""
    h, w = x.shape[-2:]
    if size > h or size > w:
        raise ValueError(f"crop size {size} exceeds the {h}x{w} input; crop_size must be <= image_size")
    top = {"tl": 0, "tr": 0, "bl": h - size, "br": h - size}.get(where, (h - size) // 2)
    left = {"tl": 0, "bl": 0, "tr": w - size, "br": w - size}.get(where, (w - size) // 2)
    return x[..., top: top + size, left: left + size]


FIVE_CROPS = ("center", "tl", "tr", "bl", "br")


def tta_views(inputs: dict[str, Any], hflip: Sequence[str] = (),
              shift: Mapping[str, int] | None = None, crop: Mapping[str, int | None] | None = None,
              tencrop: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The original inputs plus, per listed modality, copies shifted by ``shift[m]`` px
    left/right/up/down and mirrored copies of all of those: with both options on one
    modality, 10 views (the usual "10-crop" evaluation of FER2013 papers, without
    shrinking the image).

    ``crop = {m: size}`` (a model trained on random ``size`` crops, see ``FaceTransform``):
    each view of ``m`` is centre-cropped to ``size``; with ``m`` also in ``tencrop``, the four
    corner crops join the centre and every crop is also mirrored: the ten-crop evaluation
    (4 corners + centre, x mirror) of the strongest FER2013 recipes. ``tencrop`` on a
    modality without a crop size is an error (there is nothing to crop)."""
    crop = {m: int(s) for m, s in (crop or {}).items() if s}
    bad = [m for m in tencrop if m in inputs and m not in crop]
    if bad:
        raise ValueError(f"tta_tencrop={list(tencrop)}: {bad} have no crop size; train with "
                         "face.crop_size (e.g. 40 for 48 px faces) or leave tta_tencrop empty")
    views = [inputs]
    for m, size in crop.items():
        if m in inputs:
            spots = FIVE_CROPS if m in tencrop else ("center",)
            views = [{**v, m: crop_image(v[m], size, where)} for v in views for where in spots]
    hflip = list(dict.fromkeys([*hflip, *(m for m in tencrop if m in crop)]))
    for m, s in (shift or {}).items():
        if m in inputs and s:
            s = int(s)
            views = views + [{**v, m: shift_image(v[m], dx, dy)}
                             for v in views for dx, dy in ((s, 0), (-s, 0), (0, s), (0, -s))]
    for m in hflip:
        if m in inputs:
            views = views + [{**v, m: v[m].flip(-1)} for v in views]
    return views


# -- windows of voice clips -------------------------------------------------------------------

@dataclass(frozen=True)
class WindowSpec:
    """Windows in samples: ``win`` long every ``hop``; ``pad``: a clip shorter than a window
    is zero-padded to ``win`` (the ``voice.pad: true`` eval input) instead of kept short."""

    win: int
    hop: int
    pad: bool = False

    @classmethod
    def from_preprocessing(cls, preprocessing: dict[str, Any] | None, modality: str = "voice"
                           ) -> "WindowSpec | None":
        """The spec stored in a checkpoint's ``preprocessing[modality]`` (see
        :class:`emomm.data.pipelines.waveforms.ClipOptions`), or None when windows are off."""
        voice = (preprocessing or {}).get(modality) or {}
        ew = voice.get("eval_windows")
        if not ew:
            return None
        rate = int(voice.get("sample_rate") or 16000)
        window_s = float(ew.get("window_s") or voice.get("duration") or 0)
        if window_s <= 0 or float(ew.get("hop_s") or 0) <= 0:
            raise ValueError(f"preprocessing.{modality}.eval_windows={ew}: need window_s (or duration) and hop_s > 0")
        return cls(int(round(window_s * rate)), max(1, int(round(float(ew["hop_s"]) * rate))),
                   bool(voice.get("pad", True)))


def window_starts(n: int, win: int, hop: int) -> list[int]:
    """Start samples of the windows of an ``n``-sample clip: ``0, hop, 2 hop, ...`` while a
    whole window fits, plus ``n - win`` when the last one stops short of the end.
    ``n <= win``: one window at 0. E.g. ``n=5 s, win=3 s, hop=1 s`` -> 0, 1, 2 s (3 windows);
    ``n=5.5 s`` -> 0, 1, 2, 2.5 s (4)."""
    if n <= win:
        return [0]
    starts = list(range(0, n - win + 1, hop))
    if starts[-1] + win < n:
        starts.append(n - win)
    return starts


def split_windows(wave: torch.Tensor, lengths: torch.Tensor | None, spec: WindowSpec
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded clips ``[B, T]`` (+ valid ``lengths [B]``) -> windows ``[N, W]``, their valid
    lengths ``[N]`` and the clip each came from, ``owner [N]`` (N >= B, clips in order).
    ``W`` is ``spec.win``, or the longest clip when every clip is shorter (no padding added
    beyond what the batch had, unless ``spec.pad``)."""
    B, T = wave.shape
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.long)
    lens = [int(v) for v in lengths.tolist()]
    W = spec.win if spec.pad else min(spec.win, max(lens))
    pieces, wlen, owner = [], [], []
    for b, n in enumerate(lens):
        for s in window_starts(n, spec.win, spec.hop):
            piece = wave[b, s:s + min(W, n - s)]
            pieces.append(piece)
            wlen.append(W if spec.pad else len(piece))
            owner.append(b)
    out = wave.new_zeros((len(pieces), W))
    for i, p in enumerate(pieces):
        out[i, :len(p)] = p
    dev = wave.device
    return out, torch.tensor(wlen, dtype=torch.long, device=dev), torch.tensor(owner, dtype=torch.long, device=dev)


def _take(x: Any, idx: torch.Tensor) -> Any:
    """Rows ``idx`` of a batch entry (a tensor, or a list such as raw strings)."""
    if isinstance(x, torch.Tensor):
        return x.index_select(0, idx.to(x.device))
    if isinstance(x, (list, tuple)):
        return [x[i] for i in idx.tolist()]
    return x


def windowed_outputs(run: Callable[[dict[str, Any]], dict[str, torch.Tensor]], batch: dict[str, Any],
                     spec: WindowSpec, modality: str = "voice", max_windows: int = 256
                     ) -> dict[str, torch.Tensor]:
    """``run(batch) -> {name: logits [B, K]}`` evaluated on the windows of ``batch``'s
    ``modality`` clips, logits averaged per clip -> ``{name: [B, K]}``.

    ``max_windows``: windows per network call (a long recording in prediction does not
    become one huge batch)."""
    lengths = dict(batch.get("lengths") or {})
    present = dict(batch.get("present") or {})
    wave = batch["inputs"][modality]
    windows, wlen, owner = split_windows(wave, lengths.get(modality), spec)
    B = wave.shape[0]
    total: dict[str, torch.Tensor] = {}
    for a in range(0, len(owner), max_windows):
        idx = owner[a:a + max_windows]
        sub = {**batch,
               "inputs": {m: (windows[a:a + max_windows] if m == modality else _take(v, idx))
                          for m, v in batch["inputs"].items()},
               "present": {m: _take(v, idx) for m, v in present.items()},
               "lengths": {m: (wlen[a:a + max_windows] if m == modality else _take(v, idx))
                           for m, v in lengths.items() if m != modality} | {modality: wlen[a:a + max_windows]}}
        for k in ("label", "index"):
            if isinstance(batch.get(k), torch.Tensor):
                sub[k] = _take(batch[k], idx)
        for name, logits in run(sub).items():
            acc = total.setdefault(name, logits.new_zeros((B,) + tuple(logits.shape[1:]), dtype=torch.float32))
            acc.index_add_(0, idx.to(acc.device), logits.float())
    counts = torch.bincount(owner, minlength=B).clamp_min(1).to(next(iter(total.values())).device)
    return {k: v / counts.view(-1, *([1] * (v.dim() - 1))) for k, v in total.items()}


# -- logits by name ----------------------------------------------------------------------------

def view_logits(net: nn.Module, view: dict[str, Any], present: dict[str, torch.Tensor],
                lengths: dict[str, torch.Tensor] | None, subsets: Sequence[tuple[str, ...]] = (),
                aux_heads: Mapping[str, nn.Module] | None = None) -> dict[str, torch.Tensor]:
    """The logits ``[B, K]`` of one view by name, from ``net`` (an
    :class:`~emomm.models.classifier.EmotionClassifier`): ``fused``, ``modality/<m>`` (each
    modality's own head; a one-modality model's fused prediction serves as both),
    ``subset/<a+b>`` (the fused head with every other modality masked out) and, with
    ``aux_heads``, ``aux/<task>`` (``[B, K_task]``, read from the fused embedding)."""
    if aux_heads:  # the uncompiled path: the auxiliary heads need the fused embedding
        feats, pres = net.encode(view, present, lengths)
        fused, emb = net.fuse_embedded(feats, pres)
        heads = net.heads(feats) if len(net.modalities) > 1 else {net.modalities[0]: fused}
        return ({"fused": fused} | {f"modality/{m}": v for m, v in heads.items()}
                | {f"aux/{t}": head(emb) for t, head in aux_heads.items()})
    if len(net.modalities) == 1:  # the compiled forward; one prediction serves as both
        fused = net(view, present, lengths)
        return {"fused": fused, f"modality/{net.modalities[0]}": fused}
    feats, pres = net.encode(view, present, lengths)
    heads = net.heads(feats)
    out = {"fused": net.fuse(feats, pres, heads)}
    out |= {f"modality/{m}": v for m, v in heads.items()}
    for c in subsets:
        masked = {m: p if m in c else torch.zeros_like(p) for m, p in pres.items()}
        out[f"subset/{subset_key(c)}"] = net.fuse(feats, masked, heads)
    return out


def mean_outputs(run: Callable[[dict[str, Any]], dict[str, torch.Tensor]], views: list[dict[str, Any]]
                 ) -> dict[str, torch.Tensor]:
    """``run(view) -> {name: logits}`` averaged over ``views`` (a mean of logits)."""
    total: dict[str, torch.Tensor] = {}
    for view in views:
        out = run(view)
        total = out if not total else {k: total[k] + v for k, v in out.items()}
    return {k: v / len(views) for k, v in total.items()}
