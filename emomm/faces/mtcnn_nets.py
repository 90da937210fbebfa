"""MTCNN face detection batched over many frames (facenet-pytorch's networks and weights).

The P/R/O-nets and their weights come from facenet-pytorch 2.5.3, whose ``.pt`` files ship
inside the package (``facenet_pytorch/data/{p,r,o}net.pt``): nothing is downloaded.

:func:`detect_faces` follows facenet-pytorch's ``detect_face`` step by step (same image
pyramid, thresholds, box regression and non-maximum suppression), so a frame gets the boxes
``facenet_pytorch.MTCNN().detect(frame)`` gives it, with three differences that make it
fast on many frames at once:

* all frames of a batch go through each network in one call, on a contiguous NCHW tensor
  (facenet-pytorch keeps the permuted NHWC view, whose per-box crops are slow on CPU);
* non-maximum suppression runs per frame (facenet-pytorch offsets the boxes of each frame
  by ``frame_index * max_coordinate`` in float32, which loses precision on long batches
  and changes boxes by a few pixels relative to running the frames one by one);
* candidate boxes of zero size are dropped together with their crops (facenet-pytorch drops
  only the crop, misaligning later candidates);
* the networks run in the channels-last memory format, 2-4x faster on CPU: PNet's outputs
  are bit-identical, R- and O-net's differ by < 1e-6 (float rounding).

``min_face_size`` sets the first pyramid scale (``12 / min_face_size``); with
``snap_pyramid`` it is rounded down to a scale of the default pyramid (``20 / 0.709**k``),
so a larger minimum face drops the finest scales and keeps the others unchanged. Faces in
emotion videos are large, and the finest scales (the costliest: PNet runs on the largest
images) only find small faces.

Adapted from facenet-pytorch (MIT licence, (c) 2019 Timothy Esler).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torchvision.ops import nms

DEFAULT_THRESHOLDS = (0.6, 0.7, 0.7)
DEFAULT_FACTOR = 0.709
DEFAULT_MIN_FACE = 20.0


def load_nets(device: str | torch.device = "cpu"):
    """P-, R- and O-net with the weights shipped in facenet-pytorch (no download), in the
    channels-last memory format (see the module docstring)."""
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    nets = [PNet(pretrained=True), RNet(pretrained=True), ONet(pretrained=True)]
    for net in nets:
        net.eval().requires_grad_(False).to(device=device, memory_format=torch.channels_last)
    return nets


def _cl(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float = DEFAULT_FACTOR) -> list[float]:
    """The image-pyramid scales facenet-pytorch uses for a ``height x width`` image."""
    m = 12.0 / min_face_size
    minl = min(height, width) * m
    scales, s = [], m
    while minl >= 12:
        scales.append(s)
        s *= factor
        minl *= factor
    return scales


def snapped_min_face(min_face_size: float, factor: float = DEFAULT_FACTOR) -> float:
    """Largest ``20 / factor**k`` not above ``min_face_size`` (k >= 0)."""
    if min_face_size <= DEFAULT_MIN_FACE:
        return float(min_face_size)
    k = math.floor(math.log(DEFAULT_MIN_FACE / min_face_size) / math.log(factor) + 1e-9)
    return DEFAULT_MIN_FACE / factor ** k


def _area_resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(img, size, mode="area")``, which is adaptive average pooling, called
    directly (it runs once per candidate box: the Python overhead of interpolate counts)."""
    return torch._C._nn.adaptive_avg_pool2d(img, size)


def _generate_boxes(reg, probs, scale, thresh):
    stride, cellsize = 2, 12
    reg = reg.permute(1, 0, 2, 3)
    mask = probs >= thresh
    mask_inds = mask.nonzero()
    image_inds = mask_inds[:, 0]
    score = probs[mask]
    reg = reg[:, mask].permute(1, 0)
    bb = mask_inds[:, 1:].type(reg.dtype).flip(1)
    q1 = ((stride * bb + 1) / scale).floor()
    q2 = ((stride * bb + cellsize - 1 + 1) / scale).floor()
    return torch.cat([q1, q2, score.unsqueeze(1), reg], dim=1), image_inds


def _nms_per_image(boxes: torch.Tensor, scores: torch.Tensor, image_inds: torch.Tensor,
                   thresh: float) -> torch.Tensor:
    """Indices kept by NMS run separately on each image, in decreasing score order."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long)
    keep = []
    for i in torch.unique(image_inds).tolist():
        idx = torch.nonzero(image_inds == i).flatten()
        keep.append(idx[nms(boxes[idx], scores[idx], thresh)])
    keep_t = torch.cat(keep)
    return keep_t[scores[keep_t].sort(descending=True, stable=True)[1]]


def _nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """NMS with the 'Min' overlap (intersection over the smaller box), as MTCNN's last stage."""
    # float32 like facenet-pytorch, so ties at the threshold resolve the same way.
    boxes = boxes.astype(np.float32, copy=False)
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores, kind="quicksort")
    pick = []
    while order.size > 0:
        i = order[-1]
        pick.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        o = w * h / np.minimum(area[i], area[rest])
        order = rest[o <= threshold]
    return np.asarray(pick, dtype=np.int64)


def _bbreg(boxes, reg):
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out = boxes.clone()
    out[:, :4] = torch.stack([boxes[:, 0] + reg[:, 0] * w, boxes[:, 1] + reg[:, 1] * h,
                              boxes[:, 2] + reg[:, 2] * w, boxes[:, 3] + reg[:, 3] * h], dim=1)
    return out


def _rerec(boxes):
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = torch.max(w, h)
    out = boxes.clone()
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _pad(boxes, w, h):
    b = boxes[:, :4].trunc().int().cpu().numpy()
    x, y, ex, ey = b[:, 0].copy(), b[:, 1].copy(), b[:, 2].copy(), b[:, 3].copy()
    x[x < 1] = 1
    y[y < 1] = 1
    ex[ex > w] = w
    ey[ey > h] = h
    return y, ey, x, ex


def _crops(imgs, boxes, image_inds, size):
    """Area-resized crops of every candidate; drops zero-size candidates consistently."""
    h, w = imgs.shape[2:4]
    y, ey, x, ex = _pad(boxes, w, h)
    valid = (ey > y - 1) & (ex > x - 1)
    inds = image_inds.tolist()
    data = [_area_resize(imgs[inds[k]: inds[k] + 1, :, y[k] - 1: ey[k], x[k] - 1: ex[k]], size)
            for k in np.flatnonzero(valid)]
    keep = torch.from_numpy(valid)
    if not data:
        return None, keep
    return _cl((torch.cat(data) - 127.5) * 0.0078125), keep


def _run_chunked(net, x, chunk=512):
    outs = [net(x[i: i + chunk]) for i in range(0, len(x), chunk)]
    return tuple(torch.cat(v) for v in zip(*outs))


@torch.inference_mode()
def detect_faces(frames: np.ndarray | torch.Tensor | Sequence[np.ndarray], nets,
                 min_face_size: float = DEFAULT_MIN_FACE,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                 factor: float = DEFAULT_FACTOR,
                 device: str | torch.device = "cpu") -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Detect faces in a batch of equal-size RGB uint8 frames ``[N, H, W, 3]``.

    Returns one ``(boxes [K, 4] float32 x1,y1,x2,y2, scores [K], landmarks [K, 5, 2])``
    per frame (K may be 0). Landmarks: left eye, right eye, nose, left and right mouth
    corner, in pixels.
    """
    pnet, rnet, onet = nets
    if isinstance(frames, (list, tuple)):
        frames = np.stack(frames)
    if isinstance(frames, np.ndarray):
        frames = np.ascontiguousarray(frames)
        frames = torch.from_numpy(frames if frames.flags.writeable else frames.copy())
    imgs = frames.to(device)
    if imgs.dim() == 3:
        imgs = imgs.unsqueeze(0)
    if imgs.shape[-1] != 3:
        raise ValueError(f"frames must be RGB [N, H, W, 3], got shape {tuple(imgs.shape)}")
    n = imgs.shape[0]
    imgs = imgs.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
    h, w = imgs.shape[2:4]

    # Stage 1: PNet over the image pyramid.
    boxes, image_inds = [], []
    for scale in pyramid_scales(h, w, min_face_size, factor):
        data = (_area_resize(imgs, (int(h * scale + 1), int(w * scale + 1))) - 127.5) * 0.0078125
        reg, probs = pnet(_cl(data))
        b, ii = _generate_boxes(reg, probs[:, 1], scale, thresholds[0])
        pick = _nms_per_image(b[:, :4], b[:, 4], ii, 0.5)
        boxes.append(b[pick])
        image_inds.append(ii[pick])
    empty = [(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
             for _ in range(n)]
    if not boxes:
        return empty
    boxes, image_inds = torch.cat(boxes), torch.cat(image_inds)
    pick = _nms_per_image(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds = boxes[pick], image_inds[pick]
    if len(boxes) == 0:
        return empty
    regw = boxes[:, 2] - boxes[:, 0]
    regh = boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                         boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh,
                         boxes[:, 4]], dim=1)
    boxes = _rerec(boxes)

    # Stage 2: RNet refines the candidates.
    data, keep = _crops(imgs, boxes, image_inds, (24, 24))
    boxes, image_inds = boxes[keep], image_inds[keep]
    if data is None:
        return empty
    reg, prob = _run_chunked(rnet, data)
    score = prob[:, 1]
    ipass = score > thresholds[1]
    boxes = torch.cat([boxes[ipass, :4], score[ipass, None]], dim=1)
    image_inds, reg = image_inds[ipass], reg[ipass]
    pick = _nms_per_image(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds, reg = boxes[pick], image_inds[pick], reg[pick]
    boxes = _rerec(_bbreg(boxes, reg))
    if len(boxes) == 0:
        return empty

    # Stage 3: ONet scores, regresses and places the five landmarks.
    data, keep = _crops(imgs, boxes, image_inds, (48, 48))
    boxes, image_inds = boxes[keep], image_inds[keep]
    if data is None:
        return empty
    reg, pts, prob = _run_chunked(onet, data)
    score = prob[:, 1]
    ipass = score > thresholds[2]
    pts, reg = pts[ipass], reg[ipass]
    boxes = torch.cat([boxes[ipass, :4], score[ipass, None]], dim=1)
    image_inds = image_inds[ipass]
    w_i = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h_i = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    px = w_i * pts[:, :5] + boxes[:, 0:1] - 1
    py = h_i * pts[:, 5:10] + boxes[:, 1:2] - 1
    points = torch.stack([px, py], dim=2)
    boxes = _bbreg(boxes, reg)

    boxes_np, points_np, inds_np = boxes.cpu().numpy(), points.cpu().numpy(), image_inds.cpu().numpy()
    out = []
    for i in range(n):
        sel = np.flatnonzero(inds_np == i)
        if sel.size:
            sel = sel[_nms_min(boxes_np[sel, :4], boxes_np[sel, 4], 0.7)]
        out.append((boxes_np[sel, :4].astype(np.float32), boxes_np[sel, 4].astype(np.float32),
                    points_np[sel].astype(np.float32)))
    return out
