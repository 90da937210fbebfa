"""Modality encoders: small `nn.Module`s that know nothing of training.

Contract: ``encoder(x, lengths=None) -> Tensor[B, out_dim]`` and an ``out_dim`` attribute.
``x`` is the batch tensor of one modality (see :mod:`emomm.data.core.collate`); ``lengths`` is
given for variable-length modalities. Add an encoder as one file here plus one YAML in
``conf/model/<modality>_encoder/``.
"""
