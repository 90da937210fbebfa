"""Optuna sweeps run by Hydra: the search-space grammar, the trial context shared with the
job running in-process, the pruning callback, and the sweep loop behind
``hydra/sweeper=emomm_optuna`` (registered by ``hydra_plugins/emomm_optuna``)."""
