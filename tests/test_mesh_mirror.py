"""Mirror augmentation for face meshes (issue 45): the left/right twin map of MediaPipe's 468
points (derived, then stored in emomm/faces/mirror_pairs.py), mirroring normalised meshes, the
``landmarks.augment.mirror_p`` augmentation, and face pixels flipping with their landmarks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from emomm.data.datasets.fer2013 import Fer2013DataModule
from emomm.data.pipelines.landmark_points import LandmarkTransform
from emomm.faces.landmark_norm import normalize_landmarks, place_mesh, reference_mesh
from emomm.faces.mesh import default_model_path
from emomm.faces.mesh_mirror import MIRROR, derive_mirror_map, mirror_points

#: MediaPipe's points on the face's midline (lips, nose, chin, forehead).
MIDLINE = (0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 94, 151, 152, 164, 168, 175,
           195, 197, 199, 200)
NO_AUG = {"crop_scale": None, "hflip": 0, "rotation": 0, "brightness": 0, "contrast": 0, "erasing": 0}


def test_mirror_map_is_an_involution_with_the_midline_fixed_and_known_pairs():
    assert MIRROR.shape == (468,) and sorted(MIRROR.tolist()) == list(range(468))
    assert np.array_equal(MIRROR[MIRROR], np.arange(468))
    assert np.flatnonzero(MIRROR == np.arange(468)).tolist() == list(MIDLINE)
    for a, b in ((33, 263), (133, 362), (61, 291), (78, 308), (105, 334), (234, 454)):  # eyes, mouth, brows, cheeks
        assert MIRROR[a] == b and MIRROR[b] == a


def test_derive_recovers_the_twins_of_a_symmetric_mesh():
    rng = np.random.default_rng(0)
    half = rng.normal(size=(30, 3)) + [2.0, 0, 0]
    mid = rng.normal(size=(8, 3)) * [0, 1, 1]
    pts = np.concatenate([half, half * [-1, 1, 1], mid])
    order = rng.permutation(len(pts))                         # points in any index order
    want = np.r_[np.arange(30, 60), np.arange(30), np.arange(60, 68)]
    inv = np.argsort(order)
    got = derive_mirror_map(pts[order])
    assert np.array_equal(got, inv[want[order]])


def image_mirror(points: np.ndarray, width: float) -> np.ndarray:
    """What a mesh model returns for the left/right flipped image: point k is where the twin of
    k was, x reflected."""
    out = np.asarray(points, np.float64)[MIRROR].copy()
    out[:, 0] = width - out[:, 0]
    return out


@pytest.mark.parametrize("angle", [0.0, 12.0])
def test_normalised_mesh_of_the_flipped_face_is_the_mirrored_normalised_mesh(angle):
    face = reference_mesh({"curve": 0.6, "tilt": 0.5})
    face = face + np.random.default_rng(1).normal(0, 0.03, face.shape).astype(np.float32)   # not symmetric
    pts = place_mesh(face, 192, angle_deg=angle, dx=0.05)
    flipped = normalize_landmarks(image_mirror(pts, 192))
    assert np.abs(flipped - mirror_points(normalize_landmarks(pts))).max() < 1e-4
    # x negated without swapping the twins is not it
    assert np.abs(flipped - normalize_landmarks(pts) * [-1, 1, 1]).max() > 0.1


@pytest.mark.skipif(not default_model_path().is_file(), reason="face mesh model absent (make install)")
def test_the_real_mesh_of_a_flipped_face_is_the_mirrored_mesh():
    import skimage.data
    from emomm.faces.mesh import FaceMesh, mesh_crop
    from tests.test_mesh import BOX, LANDMARKS
    crop, _ = mesh_crop(skimage.data.astronaut(), BOX, LANDMARKS)
    a, b = FaceMesh()([crop, np.ascontiguousarray(crop[:, ::-1])])
    assert a is not None and b is not None
    mirrored, flipped = mirror_points(normalize_landmarks(a)), normalize_landmarks(b)
    err = np.abs(flipped - mirrored)[:, :2].mean()
    assert err < 0.03 and err < 0.25 * np.abs(flipped - normalize_landmarks(a) * [-1, 1, 1])[:, :2].mean()


def test_mirror_p_in_the_transform_and_a_forced_flip():
    pts = place_mesh(reference_mesh({"curve": 0.4}), 96, angle_deg=5)
    clean = LandmarkTransform()(pts)
    always = LandmarkTransform(train=True, augment={"jitter": 0, "mirror_p": 1.0})
    assert torch.allclose(always(pts), mirror_points(clean))
    assert torch.allclose(always(pts, flip=False), clean)
    assert torch.allclose(LandmarkTransform(train=True, augment={"mirror_p": 0.0, "jitter": 0})(pts), clean)
    assert torch.allclose(LandmarkTransform(augment={"mirror_p": 1.0})(pts), clean)   # eval: never
    clip = np.stack([pts, pts])
    assert torch.allclose(always(clip), mirror_points(LandmarkTransform()(clip)))   # a clip: every frame
    with pytest.raises(ValueError, match="mirror_p must be in"):
        LandmarkTransform(train=True, augment={"mirror_p": 2})


def _train_samples(fer_csv, tmp_path, modalities, hflip, mirror_p=0.0):
    dm = Fer2013DataModule(root=str(fer_csv.parent), modalities=modalities, augment={**NO_AUG, "hflip": hflip},
                           landmarks={"augment": {"jitter": 0.0, "mirror_p": mirror_p}},
                           mesh_cache_dir=str(tmp_path / "meshes"))
    dm.setup("fit")
    return dm, dm.splits["train"]


def test_face_and_landmarks_flip_together_or_not_at_all(fer_csv, tmp_path, monkeypatch):
    from tests.landmark_fixtures import use_fake_mesh
    use_fake_mesh(monkeypatch)
    torch.manual_seed(0)
    dm, train = _train_samples(fer_csv, tmp_path, ["face", "landmarks"], hflip=0.5, mirror_p=0.0)
    eval_face = dm.splits["val"].base.transform
    flips = []
    for i in range(len(train)):
        s = train[i]
        j = s["index"]
        face = eval_face(train.base.images[j]) if hasattr(train.base, "images") else None
        plain = train.transform(train.points[j], flip=False)
        if "landmarks" not in s["inputs"]:
            continue
        mirrored = torch.allclose(s["inputs"]["landmarks"], mirror_points(plain))
        assert mirrored or torch.allclose(s["inputs"]["landmarks"], plain)
        if face is not None:
            assert torch.equal(s["inputs"]["face"], face.flip(-1) if mirrored else face)
        flips.append(mirrored)
    assert face is not None and 0 < sum(flips) < len(flips)       # both happen, always together
    # landmarks alone: mirror_p decides
    torch.manual_seed(0)
    _, alone = _train_samples(fer_csv, tmp_path, ["landmarks"], hflip=0.5, mirror_p=1.0)
    s = alone[0]
    assert torch.allclose(s["inputs"]["landmarks"], mirror_points(alone.transform(alone.points[s["index"]], flip=False)))
