"""A trained checkpoint -> a zoo entry's files: safetensors weights (fp16 where parity holds)
and the hyper-parameters as JSON, with their SHA-256 for the card.

``fp16`` is kept only when the model's probabilities with fp16-rounded weights differ from
fp32's by at most :data:`PARITY_TOL` on every validation input given; else fp32 ships.

Pretrained weights that training left unchanged and that building the model reads again
(:meth:`EmotionModule.pretrained_state_keys`: a LoRA text encoder's frozen base, frozen token embeddings) are
left out (a LoRA entry ships its adapters and head only), and loading fills them in.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from safetensors.torch import save as save_safetensors

from emomm.models.module import EmotionModule
from emomm.utils.atomic import atomic_write_bytes
from emomm.utils.safe_load import CheckpointError, load_checkpoint
from emomm.utils.zoo_files import HPARAMS, WEIGHTS, sha256_bytes

#: The largest probability difference fp16 weights may make (issue 41).
PARITY_TOL = 1e-3


def fp16_rounded(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with every floating tensor stored as fp16 (contiguous, as safetensors wants)."""
    return {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}


@torch.no_grad()
def _probs(module: EmotionModule, batch: Mapping[str, Any]) -> torch.Tensor:
    """Fused probabilities ``[B, K]`` of ``module`` on a collated ``batch``."""
    return torch.softmax(module.outputs(dict(batch))["fused"].float(), dim=-1)


@torch.no_grad()
def fp16_parity(module: EmotionModule, batches: Iterable[Mapping[str, Any]],
                omit: Iterable[str] = ()) -> float:
    """The largest absolute probability difference between ``module`` (fp32) and a copy whose
    weights were rounded to fp16 (and computed in fp32 again), over ``batches``
    (collated, :mod:`emomm.data.core.collate`). ``inf`` when there was no batch. ``omit``:
    keys that do not ship (and so stay fp32)."""
    module = module.eval()
    state = {k: v.clone() for k, v in module.state_dict().items()}
    batches = list(batches)
    ref = [_probs(module, b) for b in batches]
    keep = set(omit)
    rounded = fp16_rounded({k: v for k, v in state.items() if k not in keep})
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in {**state, **rounded}.items()})
    try:
        diff = max((float((_probs(module, b) - r).abs().max()) for b, r in zip(batches, ref)), default=float("inf"))
    finally:
        module.load_state_dict(state)
    return diff


def _json_hparams(hparams: Mapping[str, Any], source: Path) -> bytes:
    try:
        return json.dumps(hparams, indent=1, sort_keys=True, allow_nan=False).encode()
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{source}: its hyper_parameters are not plain data ({err}); a zoo entry stores "
                              "them as JSON: retrain it with this emomm version") from None


#: How a zoo entry's stored data config names where the data lives: a prefix (not an
#: interpolation: stored configs may hold none) resolved against the data folder of whoever
#: loads it (:func:`emomm.utils.targets.checked_data_config`).
DATA_DIR_REF = "<data_dir>"


def neutral_path(path: Any) -> Any:
    """An absolute path of the building machine as its last 4 parts (``face-fer2013/seed1/
    checkpoints/best.ckpt``): enough to say which run, nothing of the machine."""
    if isinstance(path, str) and Path(path).is_absolute():
        return "/".join(Path(path).parts[-4:])
    return path


def neutral_calibration(calibration: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A calibration record (hparams or card) without the building machine's paths: the
    checkpoint it was fitted on shortened (:func:`neutral_path`), the temporary calibrated
    copy's path dropped."""
    if not calibration:
        return None if calibration is None else dict(calibration)
    out = {k: v for k, v in calibration.items() if k != "checkpoint"}
    if isinstance(out.get("fitted_on"), Mapping) and "ckpt" in out["fitted_on"]:
        out["fitted_on"] = {**out["fitted_on"], "ckpt": neutral_path(out["fitted_on"]["ckpt"])}
    return out


def neutral_data_root(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """``hparams`` with the stored data config's ``root`` (this machine's absolute path, e.g.
    ``/work/shared/data/fer2013``) as ``<data_dir>/<its folder name>`` and the calibration's
    paths shortened (:func:`neutral_calibration`), so a zoo entry stores no path of the
    machine that built it."""
    out = dict(hparams)
    if out.get("calibration"):
        out["calibration"] = neutral_calibration(out["calibration"])
    data = dict(out.get("data") or {})
    root = data.get("root")
    if isinstance(root, str) and root and not root.startswith(DATA_DIR_REF):
        data["root"] = f"{DATA_DIR_REF}/{Path(root).name}"
        out["data"] = data
    return out


def write_weights(ckpt_path: str | Path, folder: str | Path, parity: float | None,
                  omit: Iterable[str] = (), pretrained_sha256: str | None = None) -> dict[str, dict[str, Any]]:
    """Write ``weights.safetensors`` (fp16 when ``parity`` <= :data:`PARITY_TOL`, else fp32) and
    ``hparams.json`` of the checkpoint ``ckpt_path`` into ``folder``, without the state keys
    ``omit`` (pretrained weights read again at load; ``pretrained_sha256``, their
    :meth:`EmotionModule.pretrained_fingerprint`, is kept so a load on other weights is refused);
    returns the card's ``files`` section (file, sha256, bytes, dtype, parity, and how many
    tensors were left out)."""
    ckpt_path, folder = Path(ckpt_path), Path(folder)
    ckpt = load_checkpoint(ckpt_path)
    left_out = set(omit)
    state = {k: v for k, v in (ckpt.get("state_dict") or {}).items() if k not in left_out}
    other = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if other:
        raise CheckpointError(f"{ckpt_path}: state entries {other[:3]} are not tensors (a stored tokenizer?): "
                              "safetensors holds tensors only, so this model cannot be a zoo entry yet")
    half = parity is not None and parity <= PARITY_TOL
    tensors = fp16_rounded(state) if half else {k: v.float().contiguous() if v.is_floating_point() else
                                                v.contiguous() for k, v in state.items()}
    folder.mkdir(parents=True, exist_ok=True)
    weights = save_safetensors(tensors, metadata={"format": "emomm.zoo/1"})
    meta = _json_hparams({"hyper_parameters": neutral_data_root(ckpt["hyper_parameters"]),
                          "pytorch-lightning_version": ckpt.get("pytorch-lightning_version"),
                          **({"pretrained_sha256": pretrained_sha256} if left_out and pretrained_sha256 else {})},
                         ckpt_path)
    atomic_write_bytes(folder / WEIGHTS, weights)
    atomic_write_bytes(folder / HPARAMS, meta)
    return {"weights": {"file": WEIGHTS, "sha256": sha256_bytes(weights), "bytes": len(weights),
                        "dtype": "float16" if half else "float32",
                        "parity_max_prob_diff": None if parity is None else float(parity),
                        **({"pretrained_tensors_left_out": len(left_out)} if left_out else {})},
            "hparams": {"file": HPARAMS, "sha256": sha256_bytes(meta), "bytes": len(meta)}}
