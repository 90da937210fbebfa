"""OpenCV's frontal-face Haar cascade (``faces=haar``): fast, no landmarks, less accurate
than MTCNN."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from emomm.faces.base import FaceDetector, Faces


class HaarDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade: fast, no landmarks, less accurate than MTCNN.

    Scores are the cascade's level weights squashed to (0, 1) by a logistic function, which
    only serves to rank faces of one frame.
    """

    kind = "haar"

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_face_frac: float = 0.1) -> None:
        super().__init__()
        import cv2

        path = Path(cascade)
        if not path.is_file():
            path = Path(cv2.data.haarcascades) / cascade
        if not path.is_file():
            raise FileNotFoundError(f"faces.cascade={cascade}: no such file, nor in {cv2.data.haarcascades}")
        self.cascade_name, self.cascade_path = path.name, str(path)
        self.classifier = self._load()
        self.scale_factor, self.min_neighbors = float(scale_factor), int(min_neighbors)
        self.min_face_frac = float(min_face_frac)

    def _load(self):
        import cv2

        classifier = cv2.CascadeClassifier(self.cascade_path)
        if classifier.empty():
            raise ValueError(f"{self.cascade_path}: OpenCV could not load this Haar cascade")
        return classifier

    def __getstate__(self):  # cv2 classifiers do not pickle: reload from the file
        state = dict(self.__dict__)
        state["classifier"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.classifier = self._load()

    def _detect(self, frames, source, frame_indices):
        import cv2

        out = []
        for frame in frames:
            gray = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
            side = max(1, int(self.min_face_frac * min(gray.shape)))
            rects, _, weights = self.classifier.detectMultiScale3(
                gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                minSize=(side, side), outputRejectLevels=True)
            if len(rects) == 0:
                out.append(Faces.empty())
                continue
            rects = np.asarray(rects, np.float32).reshape(-1, 4)
            boxes = np.stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]], 1)
            scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, np.float32).reshape(-1)))
            out.append(Faces(boxes.astype(np.float32), scores.astype(np.float32), None))
        return out

    def settings(self) -> dict[str, Any]:
        return {"detector": self.kind, "cascade": self.cascade_name, "scale_factor": self.scale_factor,
                "min_neighbors": self.min_neighbors, "min_face_frac": self.min_face_frac}
