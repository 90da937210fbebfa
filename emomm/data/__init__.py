"""DataModules and datasets. Each dataset is one file plus one YAML in conf/data/."""
