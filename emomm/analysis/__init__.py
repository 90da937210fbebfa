"""Reading finished run folders and summarising them: cross-validation summaries,
comparison tables and plots. Works from local files alone (metrics.json, .hydra/overrides.yaml,
csv/metrics.csv, confusion_matrix.csv)."""
