"""Cached video loading throughput: clips per second from the face-crop cache into the model.

Builds ``--clips`` synthetic face clips written as real MP4 files (the ``data=synthetic
modality=video`` generator: 12 frames, given boxes), fills the crop cache once (timed
separately), then measures how fast a DataLoader turns cached entries into model-ready
batches ``[B, T, C, H, W]`` (``FaceClipDataset`` + collate: read the ``.npz`` entry, pick
``num_frames`` frames, resize, normalise, augment in training), for 0 and 2 loader workers
and for the training and evaluation transforms.

    python -m benchmarks.video_loading [--clips 256] [--num-frames 8] [--image-size 64]
Writes benchmarks/results/video_loading.json.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=256)
    ap.add_argument("--num-frames", type=int, default=8)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="*", default=[0, 2])
    args = ap.parse_args()

    import torch
    from torch.utils.data import DataLoader

    from emomm.data.core.collate import collate_samples
    from emomm.data.pipelines.face_clips import FaceClipDataset, MediaItem
    from emomm.data.pipelines.transforms import FrameTransform
    from emomm.data.synthetic.spec import draw_spec
    from emomm.data.synthetic.video_modality import SyntheticVideo
    from emomm.faces.crop_store import FaceCropStore

    tmp = Path(tempfile.mkdtemp(prefix="emomm-video-loading-"))
    gen = SyntheticVideo({"synthetic": {"cache_dir": str(tmp), "render_size": 128, "face_size": 112,
                                        "clip_frames": 12}}, train=False)
    t = time.perf_counter()
    paths = [gen.ensure_file(draw_spec(0, i)) for i in range(args.clips)]
    write_s = time.perf_counter() - t
    store = FaceCropStore({"detector": "given", "size": 112, "margin": 0.1, "cache_dir": str(tmp / "crops"),
                           "progress": False}, {"num_frames": 12})
    report = store.prepare(paths)
    items = [MediaItem(p, i % 7) for i, p in enumerate(paths)]
    entry_bytes = sum(store.cache.path(p).stat().st_size for p in paths) / len(paths)

    results = {}
    for split in ("train", "val"):
        train = split == "train"
        tf = FrameTransform(image_size=args.image_size, in_chans=3, train=train,
                            augment={"erasing": 0.0} if train else None)
        ds = FaceClipDataset(items, store, tf, "video", args.num_frames, train)
        for w in args.workers:
            loader = DataLoader(ds, batch_size=args.batch_size, shuffle=train, num_workers=w,
                                collate_fn=collate_samples, persistent_workers=False)
            it = iter(loader)
            first = next(it)  # worker start-up is not throughput
            n, t = first["label"].shape[0], time.perf_counter()
            for batch in it:
                n += batch["label"].shape[0]
            dt = time.perf_counter() - t
            n_timed = n - first["label"].shape[0]
            results[f"{split}_workers{w}"] = round(n_timed / dt, 1)
            print(f"{split} transform, {w} workers: {n_timed / dt:.1f} clips/s "
                  f"(batch {tuple(first['inputs']['video'].shape)})", flush=True)
    # Reading the entries alone (np.load of the .npz) bounds what any transform can reach.
    t = time.perf_counter()
    for p in paths:
        store.cache.load(p)
    read_cps = len(paths) / (time.perf_counter() - t)
    write_result("video_loading", {
        "clips": args.clips, "cached_frames_per_clip": 12, "face_size": 112, "num_frames": args.num_frames,
        "image_size": args.image_size, "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(),
        "clips_per_s": results, "entry_read_clips_per_s": round(read_cps, 1),
        "entry_size_kb": round(entry_bytes / 1024, 1),
        "write_videos_s": round(write_s, 1), "build_cache_s": report["time_s"],
        "build_cache_workers": report["workers"],
        "load_average": round(os.getloadavg()[0], 2),
        "note": "wall-clock on a machine shared with other jobs (see load_average)",
    })
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
