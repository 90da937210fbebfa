"""One file per dataset (its DataModule, the file-name or table conventions of the corpus,
and its group sources), each registered by one YAML in ``conf/data/``."""
