"""Modality pipelines shared by the datasets: waveforms (:mod:`.waveforms`), acted speech
(:mod:`.speech`), face images (:mod:`.face_images`, :mod:`.transforms`, :mod:`.occluders`),
face clips through the crop cache (:mod:`.face_clips`) and text (:mod:`.text_data`).
Built on :mod:`emomm.data.core`; imports no dataset."""
