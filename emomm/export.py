"""``python -m emomm.export ckpt_path=PATH|latest [format=onnx|torchscript] [quantize=int8]``.

A thin entry point over :mod:`emomm.inference.onnx_export` (the files, int8, the parity check)
and :mod:`emomm.inference.export_graph` (the traced network); the names below are
re-exported so ``from emomm.export import export`` keeps working.
"""
from __future__ import annotations

import json
from pathlib import Path

import hydra
from omegaconf import DictConfig

from emomm.inference.onnx_export import (  # noqa: F401  (the public API, re-exported)
    DEFAULT_TOLERANCE, ExportError, ExportNet, calibration_batches, check_export, example_inputs, export, export_onnx, graph_args,
    load_module, quantize_int8)
from emomm.utils.runtime import CONFIG_DIR, offline_defaults, resolve_ckpt, to_plain
from emomm.utils.safe_load import exit_on_checkpoint_error


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    offline_defaults()
    with exit_on_checkpoint_error(ExportError):
        ckpt = resolve_ckpt(cfg.ckpt_path, cfg.paths.log_dir)
        meta = export(ckpt_path=ckpt, out_dir=cfg.out_dir, format=cfg.format, quantize=cfg.get("quantize"),
                      quantize_method=cfg.quantize_method, opset=cfg.opset, tta=cfg.tta, dynamo=cfg.dynamo,
                      calibration=to_plain(cfg.get("calibration")),
                      tolerance=float(cfg.get("check_tolerance", DEFAULT_TOLERANCE)))
    print(json.dumps({k: meta[k] for k in ("files", "sizes_bytes", "modalities", "outputs", "check")
                      if k in meta}, indent=2))
    print(f"written to {Path(cfg.out_dir).resolve()}")


if __name__ == "__main__":
    main()
