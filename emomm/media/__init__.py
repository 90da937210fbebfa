"""Media decoding: audio (:mod:`.audio`), video frames and tracks (:mod:`.video`), still images
(:mod:`.images`). It imports nothing else of emomm, so datasets, face cropping and inference
all decode a file the same way, and inference can decode without importing a DataModule."""
