"""Combining finished models' class probabilities (``python -m emomm.ensemble``).

Every function takes per-model probabilities ``[M, N, K]`` (M models, N samples, K classes,
all in the data's label order) and returns ensemble probabilities ``[N, K]``. Weights and
the stacking model are fitted on the validation split and then applied to the test split.

* ``mean``: the plain average of the models' probabilities;
* ``weighted``: a weighted average, weights on the simplex chosen to minimise the
  validation log-loss (softmax-parametrised, L-BFGS);
* ``stacking``: multinomial logistic regression on the models' concatenated
  log-probabilities (L2-regularised), fitted on validation.

A member that lacks its input for a sample (``present [M, N]`` False: none of the modalities it
reads is in that sample, e.g. a face whose mesh was not found, for a landmark model) is left out
of that sample: the mean and the weighted mean are taken over the members present (weights
renormalised); stacking, whose inputs are fixed, reads the present members' mean in its place.
A sample that no member has counts them all. The :class:`~emomm.inference.predictor.Predictor`'s
ensembles and ``python -m emomm.ensemble`` follow this one rule.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

METHODS = ("mean", "weighted", "stacking")


def member_present(present: Mapping[str, Any], modalities: Sequence[str], n: int) -> torch.Tensor:
    """Bool ``[n]``: which samples of a batch (``present``: its ``{modality: Bool[n]}`` masks,
    tensors or arrays; a modality without a mask is present) have any of ``modalities``, the
    ones a member reads."""
    out = torch.zeros(n, dtype=torch.bool)
    for m in modalities:
        out |= torch.as_tensor(np.asarray(present[m], bool)).reshape(n) if m in present else True
    return out


def counted(present: torch.Tensor | None, m: int, n: int) -> torch.Tensor:
    """Float ``[M, N]``, 1 where a member counts for a sample: ``present`` (Bool ``[M, N]``; None:
    all), except that a sample no member has counts them all."""
    if present is None:
        return torch.ones(m, n, dtype=torch.float64)
    w = present.to(torch.float64)
    return torch.where(w.sum(0, keepdim=True) > 0, w, torch.ones_like(w))


def dropped(present: torch.Tensor | None) -> list[int]:
    """Per member, on how many samples it is left out (``present`` Bool ``[M, N]``)."""
    if present is None:
        return []
    return [int(v) for v in (counted(present, *present.shape) == 0).sum(1)]


def mean_probs(probs: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
    """``[M, N, K]`` -> ``[N, K]``: per sample, the mean over the members present."""
    if present is None:
        return probs.mean(0)
    return weighted_probs(probs, torch.ones(probs.shape[0], dtype=probs.dtype), present)


def fit_weights(probs: torch.Tensor, labels: torch.Tensor, steps: int = 100,
                present: torch.Tensor | None = None) -> torch.Tensor:
    """Simplex weights ``[M]`` minimising the log-loss of :func:`weighted_probs`."""
    theta = torch.zeros(probs.shape[0], requires_grad=True)
    opt = torch.optim.LBFGS([theta], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        mix = weighted_probs(probs, theta.softmax(0), present)
        loss = F.nll_loss(mix.clamp_min(1e-8).log(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return theta.detach().softmax(0)


def weighted_probs(probs: torch.Tensor, weights: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
    """``[M, N, K]`` and weights ``[M]`` -> ``[N, K]``: per sample, the weighted mean over the
    members present (their weights renormalised)."""
    if present is None:
        return (weights[:, None, None] * probs).sum(0)
    w = weights[:, None] * counted(present, *probs.shape[:2]).to(weights.dtype)     # [M, N]
    w = w / w.sum(0, keepdim=True).clamp_min(1e-12)
    return (w[..., None].to(probs.dtype) * probs).sum(0)


def fill_absent(probs: torch.Tensor, present: torch.Tensor | None) -> torch.Tensor:
    """``[M, N, K]`` with each absent member's probabilities replaced by the mean of the members
    present for that sample (for stacking, whose inputs cannot be left out)."""
    if present is None:
        return probs
    keep = counted(present, *probs.shape[:2]).bool()[..., None]
    return torch.where(keep, probs, mean_probs(probs, present)[None])


class Stacker(torch.nn.Module):
    """Logistic regression ``[N, M*K] -> [N, K]`` on log-probabilities."""

    def __init__(self, n_models: int, k: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(n_models * k, k)

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        x = probs.clamp_min(1e-8).log().permute(1, 0, 2).flatten(1)   # [N, M*K]
        return self.lin(x)


def fit_stacker(probs: torch.Tensor, labels: torch.Tensor, l2: float = 1e-2, steps: int = 200) -> Stacker:
    torch.manual_seed(0)
    model = Stacker(probs.shape[0], probs.shape[2])
    opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(probs), labels) + l2 * model.lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return model.eval()


def combine(method: str, val_probs: torch.Tensor, val_labels: torch.Tensor, test_probs: torch.Tensor,
            val_present: torch.Tensor | None = None, test_present: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, dict]:
    """Ensemble probabilities on test ``[N, K]`` and what was fitted (for metrics.json);
    ``*_present`` (Bool ``[M, N]``): which members have their input per sample (module docstring)."""
    if method == "mean":
        return mean_probs(test_probs, test_present), {}
    if method == "weighted":
        w = fit_weights(val_probs, val_labels, present=val_present)
        return weighted_probs(test_probs, w, test_present), {"weights": w.tolist()}
    if method == "stacking":
        stacker = fit_stacker(fill_absent(val_probs, val_present), val_labels)
        with torch.no_grad():
            return (stacker(fill_absent(test_probs, test_present)).softmax(-1),
                    {"stacking": "logistic regression on val log-probs"})
    raise ValueError(f"method={method!r}: choose one of {list(METHODS)}")
