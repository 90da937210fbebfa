"""Runs: the work behind the training and scoring entry points, one layer below them.

* :mod:`.training` - a training run (``emomm.train``, each fold of ``emomm.cv``);
* :mod:`.evaluation` - scoring a checkpoint (``emomm.eval``) and the evaluation data that
  ``emomm.ensemble`` and ``emomm.personalize`` read;
* :mod:`.ensembling` - combining finished runs (``emomm.ensemble``);
* :mod:`.annotated_video` - predict's annotated video (``emomm.predict annotate=true``).

The entry points (``emomm/train.py``, ``eval.py``, ``cv.py``, ``ensemble.py``,
``personalize/``) keep only the command line and the exit codes, and import from here, never
from each other (the layers are import-linter contracts in pyproject.toml).
"""
