"""Combining finished models' class probabilities (``python -m emomm.ensemble``).

Every function takes per-model probabilities ``[M, N, K]`` (M models, N samples, K classes,
all in the data's label order) and returns ensemble probabilities ``[N, K]``. Weights and
the stacking model are fitted on the validation split and then applied to the test split.

* ``mean``: the plain average of the models' probabilities;
* ``weighted``: a weighted average, weights on the simplex chosen to minimise the
  validation log-loss (softmax-parametrised, L-BFGS);
* ``stacking``: multinomial logistic regression on the models' concatenated
  log-probabilities (L2-regularised), fitted on validation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

METHODS = ("mean", "weighted", "stacking")


def mean_probs(probs: torch.Tensor) -> torch.Tensor:
    return probs.mean(0)


def fit_weights(probs: torch.Tensor, labels: torch.Tensor, steps: int = 100) -> torch.Tensor:
    """Simplex weights ``[M]`` minimising the log-loss of ``sum_m w_m probs[m]``."""
    theta = torch.zeros(probs.shape[0], requires_grad=True)
    opt = torch.optim.LBFGS([theta], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        mix = (theta.softmax(0)[:, None, None] * probs).sum(0)
        loss = F.nll_loss(mix.clamp_min(1e-8).log(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return theta.detach().softmax(0)


def weighted_probs(probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (weights[:, None, None] * probs).sum(0)


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


def combine(method: str, val_probs: torch.Tensor, val_labels: torch.Tensor,
            test_probs: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Ensemble probabilities on test ``[N, K]`` and what was fitted (for metrics.json)."""
    if method == "mean":
        return mean_probs(test_probs), {}
    if method == "weighted":
        w = fit_weights(val_probs, val_labels)
        return weighted_probs(test_probs, w), {"weights": w.tolist()}
    if method == "stacking":
        stacker = fit_stacker(val_probs, val_labels)
        with torch.no_grad():
            return stacker(test_probs).softmax(-1), {"stacking": "logistic regression on val log-probs"}
    raise ValueError(f"method={method!r}: choose one of {list(METHODS)}")
