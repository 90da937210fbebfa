"""DataModules and datasets, by kind: :mod:`.core` (plumbing) < :mod:`.pipelines` (modality
pipelines) < :mod:`.datasets` (one file per dataset plus one YAML in conf/data/) and
:mod:`.synthetic`; :mod:`.health` is the dataset-health report of ``python -m emomm.validate``."""
