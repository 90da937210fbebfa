"""The eGeMAPS + logistic-regression baseline's pieces (benchmarks/egemaps_ravdess.py) on
made-up features: the features themselves need opensmile, an optional extra."""
import numpy as np
import pytest

from tests.test_configs import _bench_module

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def egemaps():
    return _bench_module("egemaps_ravdess")


def test_speaker_normalisation_removes_each_speakers_offset(egemaps):
    rng = np.random.default_rng(0)
    speakers = np.repeat([1, 2, 3], 20)
    x = rng.normal(size=(60, 4)) + speakers[:, None] * 10.0   # each speaker shifted far apart
    z = egemaps.speaker_normalised(x, speakers)
    for s in (1, 2, 3):
        assert np.allclose(z[speakers == s].mean(0), 0, atol=1e-9)
        assert np.allclose(z[speakers == s].std(0), 1, atol=1e-6)


def test_logistic_regression_picks_c_by_grouped_cv_and_scores_validation(egemaps):
    rng = np.random.default_rng(1)
    y = np.tile([0, 1, 2], 40)
    x = rng.normal(size=(120, 5)) + np.eye(3, 5)[y] * 4.0      # separable classes
    groups = np.repeat(np.arange(8), 15)
    x_va = rng.normal(size=(30, 5)) + np.eye(3, 5)[np.tile([0, 1, 2], 10)] * 4.0
    probs, c, cv = egemaps.fit_logreg(x, y, groups, x_va, grid=(0.01, 1.0))
    assert probs.shape == (30, 3) and np.allclose(probs.sum(1), 1)
    assert set(cv) == {0.01, 1.0} and cv[c] == max(cv.values())
    assert egemaps.uar(np.tile([0, 1, 2], 10), probs.argmax(1)) > 0.9
