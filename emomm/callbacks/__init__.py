"""Training techniques that act on training from outside the model, as Lightning callbacks.

Each is switched on by config (``conf/callbacks/``): ``callbacks=ema``, or several as a list,
``callbacks=[ema,freeze_encoders,ogm_ge]``, each tuned by its key
(``callbacks.freeze_encoders.epochs=2``). None of them is needed to predict: checkpoints stay
self-contained (:mod:`emomm.models.checkpoint_reload`).

* :mod:`~emomm.callbacks.ema`: exponential moving average of the weights (``ema``).
* :mod:`~emomm.callbacks.lookahead`: Lookahead's slow weights (``lookahead``).
* :mod:`~emomm.callbacks.small_crops`: smaller random training crops in the first epochs (``small_crops``).
* :mod:`~emomm.callbacks.freeze_encoders`: encoders fixed for their first epochs (``freeze_encoders``).
* :mod:`~emomm.callbacks.ogm_ge`: OGM-GE balancing of a multimodal model's modalities (``ogm_ge``).
* :mod:`~emomm.callbacks.last_epoch`: the last epoch is always validated (in ``default``).
* :mod:`~emomm.callbacks.resume_state`: exact resume, checkpoint on SIGTERM (in ``default``).
* :mod:`~emomm.callbacks.wandb_report`: W&B tables after testing (``logger=wandb``).
"""
