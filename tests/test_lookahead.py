"""Lookahead (emomm/callbacks/lookahead.py): the slow copy's update rule and the last step."""
from types import SimpleNamespace

import pytest
import torch

from emomm.callbacks.lookahead import Lookahead


class Holder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))


def test_sync_moves_the_slow_copy_and_resets_the_weights_to_it():
    m, la = Holder(), Lookahead(decay=0.9, every=2)
    la.on_fit_start(None, m)
    la.on_train_start(SimpleNamespace(estimated_stepping_batches=100), m)
    start = m.net[0].weight.detach().clone()
    with torch.no_grad():
        m.net[0].weight.add_(1.0)
    trainer = SimpleNamespace(global_step=50, estimated_stepping_batches=100)
    la.on_train_batch_end(trainer, m)
    d = 0.9 ** 2 * 0.5 ** 3
    assert torch.allclose(m.net[0].weight, start + (1 - d)) and torch.allclose(la.slow["0.weight"], m.net[0].weight)
    assert m.net[1].num_batches_tracked.dtype == torch.long and "1.num_batches_tracked" not in la.slow
    with torch.no_grad():
        m.net[0].weight.add_(1.0)
    la.on_train_batch_end(SimpleNamespace(global_step=51, estimated_stepping_batches=100), m)  # not a sync step
    assert torch.allclose(m.net[0].weight, start + (1 - d) + 1)
    la.on_train_batch_end(SimpleNamespace(global_step=100, estimated_stepping_batches=100), m)  # the last step
    assert torch.allclose(m.net[0].weight, start + (1 - d))  # the weights are the slow copy
    restored = Lookahead(decay=0.9, every=2)
    restored.load_state_dict(la.state_dict())
    assert torch.equal(restored.slow["0.weight"], la.slow["0.weight"])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="decay"):
        Lookahead(decay=1.0)
    with pytest.raises(ValueError, match="every"):
        Lookahead(every=0)
