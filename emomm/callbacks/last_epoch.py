"""Validate the last epoch even when ``trainer.check_val_every_n_epoch`` skips it.

With ``check_val_every_n_epoch = n > 1`` Lightning validates only epochs that are multiples of
``n`` and writes checkpoints only after a validation; a run whose ``max_epochs`` is not one
(``experiment=fer2013_fast trainer.max_epochs=10`` with its ``n = 6``) would end with its
last epochs never scored and no checkpoint of them. This callback (in
``conf/callbacks/default.yaml``) switches the last epoch to validate, so the final weights are
always scored and saved. Runs bounded by steps or time alone are left as they are: their last
epoch is not known in advance.
"""
from __future__ import annotations

import lightning as L


class ValidateLastEpoch(L.Callback):
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        n, last = trainer.check_val_every_n_epoch, trainer.max_epochs
        if (n or 1) > 1 and trainer.current_epoch == (last or 0) - 1:  # max_epochs -1/None: unknown
            trainer.check_val_every_n_epoch = 1
