"""Metric values against numbers computed by hand."""
import pytest
import torch

from emomm.models.scoring import build_metrics, build_per_class

# 3 classes, 8 samples.
TARGET = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
PRED = torch.tensor([0, 0, 1, 2, 1, 0, 2, 2])
# Per class: recall 2/4, 1/2, 2/2; precision 2/3, 1/2, 2/3; support 4, 2, 2.
RECALL = [0.5, 0.5, 1.0]
PRECISION = [2 / 3, 0.5, 2 / 3]
F1 = [2 * p * r / (p + r) for p, r in zip(PRECISION, RECALL)]


def test_headline_metrics_match_hand_computed_values():
    m = build_metrics(3)
    m.update(PRED[:5], TARGET[:5])  # updates accumulate over batches
    m.update(PRED[5:], TARGET[5:])
    v = {k: float(x) for k, x in m.compute().items()}
    assert v["acc"] == pytest.approx(5 / 8)
    assert v["uar"] == pytest.approx(sum(RECALL) / 3)
    assert v["recall_macro"] == pytest.approx(sum(RECALL) / 3)
    assert v["precision_macro"] == pytest.approx(sum(PRECISION) / 3)
    assert v["f1_macro"] == pytest.approx(sum(F1) / 3)
    assert v["f1_weighted"] == pytest.approx((4 * F1[0] + 2 * F1[1] + 2 * F1[2]) / 8)


def test_per_class_recall_and_confusion_matrix():
    pc = build_per_class(3)
    pc.update(PRED, TARGET)
    out = pc.compute()
    assert out["recall_per_class"].tolist() == pytest.approx(RECALL)
    assert out["confmat"].tolist() == [[2, 1, 1], [1, 1, 0], [0, 0, 2]]
