"""Synthetic face images: `render_face` followed by the usual `FaceTransform`."""
from __future__ import annotations

from typing import Any

import torch

from emomm.data.synthetic.face_render import render_face
from emomm.data.synthetic.registry import register
from emomm.data.synthetic.spec import SampleSpec
from emomm.data.pipelines.transforms import FaceTransform


@register("face")
class SyntheticFace:
    def __init__(self, options: dict[str, Any], train: bool) -> None:
        opts = dict(options)
        # Faces are drawn at render_size (default: the model's image size), then resized.
        self.render_size = int(opts.pop("render_size", opts.get("image_size", 64)))
        self.transform = FaceTransform(train=train, **opts)

    def __call__(self, spec: SampleSpec) -> torch.Tensor:
        return self.transform(render_face(spec, self.render_size))

    def describe(self) -> dict[str, Any]:
        return self.transform.describe()
