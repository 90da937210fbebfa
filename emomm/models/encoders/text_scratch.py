"""`TextScratchEncoder`: a small text encoder trained from scratch, tokenizer included.

For users without any pretrained model. The tokenizer (WordPiece or BPE, lower-cased,
``vocab_size`` at most) is trained with the ``tokenizers`` library on the training split's
utterances when training starts: ``EmotionModule.setup("fit")`` calls this encoder's
:meth:`fit_to_data`; the same texts train the same tokenizer in every process. The embedding table always has ``vocab_size`` rows, whatever the
trained vocabulary's size, so the architecture depends on the config alone, and the
tokenizer itself is stored in the checkpoint (``get_extra_state``): ``load_from_checkpoint``
restores both and needs nothing else.

Architectures: ``bilstm`` (embedding -> BiLSTM -> masked mean+max pooling) or
``transformer`` (embedding + learned positions -> pre-norm transformer encoder -> masked mean
or [CLS]). Inputs follow :mod:`emomm.models.encoders.text_transformer`: strings or ``{"text",
"context"}``, read as ``[CLS] utterance [SEP] context [SEP]``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from emomm.data.pipelines.text_data import dataset_texts
from emomm.models.encoders.text_transformer import clean_backend, encode_batch, masked_mean

from emomm.models.features import EncoderOutput

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD_ID = 0


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8000, kind: str = "wordpiece",
                    min_frequency: int = 2):
    """A lower-casing WordPiece/BPE ``tokenizers.Tokenizer`` with ``[CLS] A [SEP] B [SEP]``
    post-processing, trained on ``texts``; ids 0-4 are ``SPECIAL_TOKENS``.

    The same texts give the same tokenizer in every process: WordPiece's continuing pieces
    (``##x``) get fixed ids before training (see :func:`continuing_pieces`)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    texts = [t for t in texts if t]
    normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        pieces = continuing_pieces(texts, normalizer, pre_tokenizer, "##")
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=SPECIAL_TOKENS + pieces)
        tok.decoder = decoders.WordPiece()
    elif kind == "bpe":
        tok, pieces = Tokenizer(models.BPE(unk_token="[UNK]")), []
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=SPECIAL_TOKENS)
    else:
        raise ValueError(f"model.encoders.text.tokenizer must be wordpiece or bpe, got {kind!r}")
    tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
    tok.train_from_iterator(texts, trainer=trainer)
    tok = without_added_tokens(tok, pieces)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tok


def continuing_pieces(texts: Sequence[str], normalizer, pre_tokenizer, prefix: str) -> list[str]:
    """Every ``prefix + character`` piece that training on ``texts`` creates (each character
    of a word but its first), sorted.

    ``tokenizers`` (<= 0.23, huggingface/tokenizers#1794) gives these pieces ids in hash-map
    order, different in every process, and the ids break ties between equally frequent
    merges, so the trained vocabulary itself changes from run to run. Passed to the trainer
    as special tokens, they get fixed ids (right after ``SPECIAL_TOKENS``) before training."""
    chars = set()
    for text in texts:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)):
            chars.update(word[1:])
    return [prefix + c for c in sorted(chars)]


def without_added_tokens(tok, names: Sequence[str]):
    """A copy of the ``tokenizers.Tokenizer`` ``tok`` where ``names`` are no longer added
    (special) tokens but plain entries of its model's vocabulary (same ids): the text
    ``##s`` is then read as ``#``, ``#``, ``s`` again, and decoding keeps those pieces."""
    if not names:
        return tok
    from tokenizers import Tokenizer
    data, drop = json.loads(tok.to_str()), set(names)
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] not in drop]
    return Tokenizer.from_str(json.dumps(data))


class TextScratchEncoder(nn.Module):
    """Args:
        arch: ``bilstm`` | ``transformer``.
        vocab_size: tokenizer vocabulary cap = embedding rows (fixed by config).
        tokenizer: ``wordpiece`` | ``bpe`` (trained), or a path to a ``tokenizer.json`` to
            use as is (its vocabulary must fit ``vocab_size``).
        min_frequency: tokenizer training: minimum count of a merged token.
        embed_dim / hidden / layers / heads / dropout: sizes (``hidden`` is the LSTM size
            per direction or the transformer width).
        max_length: tokens per sample (utterance + context + specials).
        pooling: ``mean`` (bilstm: mean and max concatenated) or ``cls`` (transformer).
        pool_context: pool over the context tokens too.
    """

    def __init__(self, arch: str = "bilstm", vocab_size: int = 8000, tokenizer: str = "wordpiece",
                 min_frequency: int = 2, embed_dim: int = 128, hidden: int = 128, layers: int = 1,
                 heads: int = 4, dropout: float = 0.2, max_length: int = 128,
                 pooling: str = "mean", pool_context: bool = False) -> None:
        super().__init__()
        if arch not in ("bilstm", "transformer"):
            raise ValueError(f"model.encoders.text.arch must be bilstm or transformer, got {arch!r}")
        if pooling not in ("mean", "cls") or (pooling == "cls" and arch == "bilstm"):
            raise ValueError(f"pooling={pooling!r}: bilstm pools mean (+max); transformer mean or cls")
        self.arch, self.vocab_size, self.max_length = arch, int(vocab_size), int(max_length)
        self.tokenizer_kind, self.min_frequency = tokenizer, min_frequency
        self.pooling, self.pool_context = pooling, pool_context
        self._tok = None
        self.embed = nn.Embedding(self.vocab_size, embed_dim, padding_idx=PAD_ID)
        self.segment = nn.Embedding(2, embed_dim)
        self.drop = nn.Dropout(dropout)
        if arch == "bilstm":
            self.rnn = nn.LSTM(embed_dim, hidden, num_layers=layers, batch_first=True,
                               bidirectional=True, dropout=dropout if layers > 1 else 0.0)
            self.out_dim = 4 * hidden  # (mean, max) x 2 directions
            self.token_dim = 2 * hidden
        else:
            self.position = nn.Embedding(self.max_length, embed_dim)
            self.proj = nn.Linear(embed_dim, hidden) if embed_dim != hidden else nn.Identity()
            layer = nn.TransformerEncoderLayer(hidden, heads, hidden * 4, dropout, batch_first=True,
                                               norm_first=True, activation="gelu")
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(hidden)
            self.out_dim = hidden
            self.token_dim = hidden
        if tokenizer not in ("wordpiece", "bpe"):
            path = Path(tokenizer).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"model.encoders.text.tokenizer={tokenizer}: not wordpiece/bpe "
                                        "and no such tokenizer.json")
            from tokenizers import Tokenizer
            self._set_tokenizer(Tokenizer.from_file(str(path)))

    # -- tokenizer ---------------------------------------------------------------------------
    @property
    def tokenizer(self):
        return self._tok

    @property
    def fitted(self) -> bool:
        return self._tok is not None

    def _set_tokenizer(self, tok) -> None:
        tok = clean_backend(tok)
        if tok.get_vocab_size() > self.vocab_size:
            raise ValueError(f"the tokenizer has {tok.get_vocab_size()} tokens but vocab_size is "
                             f"{self.vocab_size}; raise model.encoders.text.vocab_size")
        if tok.token_to_id("[PAD]") not in (None, PAD_ID):
            raise ValueError("the tokenizer's [PAD] must be id 0")
        self._tok = tok

    def fit_texts(self, texts: Iterable[str]) -> None:
        """Train the tokenizer on ``texts`` (replacing any previous one)."""
        tok = train_tokenizer(texts, self.vocab_size, self.tokenizer_kind, self.min_frequency)
        self._set_tokenizer(tok)
        log.info("trained a %s tokenizer: %d tokens (cap %d)", self.tokenizer_kind,
                 tok.get_vocab_size(), self.vocab_size)

    def fit_to_data(self, datamodule: Any, modality: str = "text") -> None:
        """Hook called by ``EmotionModule.setup("fit")``: train the tokenizer on the training
        split, unless this encoder already has one (given, or restored from a checkpoint)."""
        if self.fitted:
            return
        if datamodule is None or not getattr(datamodule, "splits", None):
            raise RuntimeError("TextScratchEncoder trains its tokenizer from the datamodule's "
                               "training split; fit with trainer.fit(model, datamodule=...)")
        self.fit_texts(dataset_texts(datamodule.splits["train"], modality))

    def get_extra_state(self) -> dict[str, Any]:
        return {"tokenizer": self._tok.to_str() if self._tok is not None else None}

    def set_extra_state(self, state: Any) -> None:
        if isinstance(state, dict) and state.get("tokenizer"):
            from tokenizers import Tokenizer
            self._set_tokenizer(Tokenizer.from_str(state["tokenizer"]))

    # -- forward -----------------------------------------------------------------------------
    def tokenize(self, x: Sequence[Any]) -> dict[str, torch.Tensor]:
        if self._tok is None:
            raise RuntimeError(
                "TextScratchEncoder has no tokenizer yet: it is trained on the training split when "
                "training starts (EmotionModule.setup('fit')) and restored from checkpoints; "
                "call encoder.fit_texts(texts) to build one by hand")
        return encode_batch(self._tok, x, self.max_length, PAD_ID, self.pool_context)

    def forward(self, x: Sequence[Any], lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(x, lengths).pooled

    def encode(self, x: Sequence[Any], lengths: torch.Tensor | None = None) -> EncoderOutput:
        """Pooled ``[B, out_dim]`` and per-token states ``[B, L, token_dim]`` (padding masked)."""
        enc = self.tokenize(x)
        device = self.embed.weight.device
        ids = enc["input_ids"].to(device)
        att = enc["attention_mask"].to(device).bool()
        pool = enc["pool_mask"].to(device)
        h = self.embed(ids) + self.segment(enc["token_type_ids"].to(device))
        if self.arch == "bilstm":
            h = self.drop(h)
            lens = att.sum(1).clamp_min(1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(h, lens, batch_first=True, enforce_sorted=False)
            out, _ = self.rnn(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
            mean = masked_mean(out, pool)
            mx = out.masked_fill(~pool.unsqueeze(-1), float("-inf")).amax(1)
            return EncoderOutput(self.drop(torch.cat([mean, mx.clamp_min(-1e4)], dim=-1)), out, att)
        pos = torch.arange(ids.shape[1], device=device)
        h = self.drop(self.proj(h + self.position(pos)))
        out = self.norm(self.encoder(h, src_key_padding_mask=~att))
        return EncoderOutput(out[:, 0] if self.pooling == "cls" else masked_mean(out, pool), out, att)
