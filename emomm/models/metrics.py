"""Classification metrics for every split (torchmetrics).

WAR = accuracy (weighted average recall), UAR = balanced accuracy (macro recall, the
standard speech-emotion metric), macro/weighted F1 (weighted F1 is MELD's metric).
"""
from __future__ import annotations

from torchmetrics import MetricCollection
from torchmetrics.classification import (MulticlassAccuracy, MulticlassConfusionMatrix,
                                         MulticlassF1Score, MulticlassPrecision, MulticlassRecall)


def build_metrics(num_classes: int) -> MetricCollection:
    k = num_classes
    return MetricCollection({
        "acc": MulticlassAccuracy(k, average="micro"),
        "uar": MulticlassAccuracy(k, average="macro"),
        "f1_macro": MulticlassF1Score(k, average="macro"),
        "f1_weighted": MulticlassF1Score(k, average="weighted"),
        "precision_macro": MulticlassPrecision(k, average="macro"),
        "recall_macro": MulticlassRecall(k, average="macro"),
    }, compute_groups=False)


def build_per_class(num_classes: int) -> MetricCollection:
    return MetricCollection({
        "recall_per_class": MulticlassRecall(num_classes, average=None),
        "confmat": MulticlassConfusionMatrix(num_classes),
    }, compute_groups=False)
