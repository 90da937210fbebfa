"""Landmark normalisation: invariant to translation, scale and in-plane rotation (a hypothesis
property over random meshes and similarity transforms), batched, and not invariant to what
carries the expression (a moved mouth corner still moves after normalisation)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emomm.faces.landmark_norm import (CANONICAL_STABLE, STABLE_POINTS, clip_points, normalize_landmarks,
                                       place_mesh, reference_mesh)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _similarity(points: np.ndarray, angle: float, scale: float, shift: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = points.astype(np.float64).copy()
    out[..., :2] = out[..., :2] @ np.array([[c, -s], [s, c]]).T
    return out * scale + shift


@FAST
@given(seed=st.integers(0, 2**31 - 1), angle=st.floats(-np.pi, np.pi), scale=st.floats(0.05, 50.0),
       tx=st.floats(-500, 500), ty=st.floats(-500, 500), tz=st.floats(-50, 50))
def test_normalisation_is_invariant_to_translation_scale_and_in_plane_rotation(seed, angle, scale, tx, ty, tz):
    rng = np.random.default_rng(seed)
    mesh = reference_mesh() + rng.normal(0, 0.05, (468, 3)).astype(np.float32)  # a random face, not a template
    moved = _similarity(mesh, angle, scale, np.array([tx, ty, tz]))
    np.testing.assert_allclose(normalize_landmarks(moved), normalize_landmarks(mesh), atol=2e-4)


def test_the_stable_points_land_on_the_canonical_frame():
    mesh = place_mesh(reference_mesh(), 192, angle_deg=25, dx=0.1, dy=-0.05, scale=1.3)
    out = normalize_landmarks(mesh)
    stable = out[list(STABLE_POINTS)]
    assert np.abs(stable.mean(0)).max() < 1e-5
    assert np.sqrt((stable ** 2).sum(-1).mean()) == pytest.approx(1.0, abs=1e-5)
    # the outer eye corners end up level and left-to-right, whatever the head's tilt was
    left, right = out[33], out[263]
    assert abs(left[1] - right[1]) < 1e-4 and left[0] < -0.5 < 0.5 < right[0]
    canon = CANONICAL_STABLE - CANONICAL_STABLE.mean(0)
    canon = canon / np.sqrt((canon ** 2).sum(-1).mean())
    xy = stable[:, :2] / np.sqrt((stable[:, :2] ** 2).sum(-1).mean())   # scale counts z too
    assert np.abs(xy - canon).max() < 1e-4


def test_batched_equals_one_by_one_and_expression_survives():
    meshes = np.stack([place_mesh(reference_mesh({"curve": c}), 100, angle_deg=a)
                       for c, a in ((0.0, 0.0), (0.9, 30.0), (-0.7, -20.0))])
    batched = normalize_landmarks(meshes[None])                          # [1, 3, P, 3]
    assert batched.shape == (1, 3, 468, 3) and batched.dtype == np.float32
    for i in range(3):
        np.testing.assert_allclose(batched[0, i], normalize_landmarks(meshes[i]), atol=1e-6)
    # a smile lifts the mouth corners (61, 291) relative to the eyes: still visible after alignment
    assert batched[0, 1, 61, 1] < batched[0, 0, 61, 1] - 0.02
    assert batched[0, 2, 61, 1] > batched[0, 0, 61, 1] + 0.02


def test_bad_shapes_and_degenerate_meshes():
    with pytest.raises(ValueError, match=r"\[\.\.\., P, 3\]"):
        normalize_landmarks(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="landmarks.points"):
        clip_points(np.zeros((400, 3)))
    assert clip_points(np.zeros((478, 3))).shape == (468, 3)
    flat = np.ones((468, 3), np.float32) * 7
    assert np.isfinite(normalize_landmarks(flat)).all() and np.abs(normalize_landmarks(flat)).max() == 0
