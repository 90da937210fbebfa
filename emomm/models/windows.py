"""Multi-window evaluation of voice clips: one prediction per clip from all its windows.

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
   averaged in :mod:`emomm.models.tta`).

A clip no longer than a window is one window, the clip itself: the result equals the single
centre-crop evaluation. Everything is per sample, so DDP and the per-clip metrics see one
prediction per clip, exactly as without windows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch


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
