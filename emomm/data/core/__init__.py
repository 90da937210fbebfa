"""Core data plumbing every dataset shares: the DataModule base (:mod:`.emotion_datamodule`),
splits (:mod:`.splits`, :mod:`.speakers`), the batch contract (:mod:`.collate`), seeded
sampling (:mod:`.sampling`), what loading left out (:mod:`.skips`) and group sources
(:mod:`.group_sources`). Imports nothing from the rest of :mod:`emomm.data`."""
