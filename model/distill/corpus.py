"""Unlabelled text for MLM pre-training distillation and KD transfer sets: local files, offline tasks, hub datasets."""

from __future__ import annotations

from pathlib import Path

from harness.common.errors import BadInput


def read_corpus(spec: str, limit: int | None = None, min_chars: int = 8) -> list[str]:
    """Texts from a local .txt (one per line), a task name or data file (its train split), or `hf:NAME[:CONFIG]`."""
    from harness.common.data import list_tasks, load_task

    path = Path(spec).expanduser()
    if spec.startswith("hf:"):
        texts = _hub(spec[3:], limit)
    elif spec in list_tasks() or (path.suffix.lower() in (".csv", ".json", ".jsonl", ".parquet", ".tsv")):
        texts = load_task(spec, "train").texts
    elif path.suffix or path.exists() or "/" in spec:
        if not path.is_file():
            raise BadInput(f"corpus file {path} does not exist")
        with open(path, encoding="utf-8", errors="replace") as f:
            texts = [line.strip() for line in f]
    else:
        raise BadInput(f"corpus {spec!r}: give a text file, a task ({', '.join(list_tasks())}) or hf:DATASET")
    texts = [t for t in texts if len(t) >= min_chars]
    if not texts:
        raise BadInput(f"corpus {spec!r} is empty (no line of at least {min_chars} characters)")
    return texts[:limit] if limit else texts


def _hub(name: str, limit: int | None) -> list[str]:
    import datasets

    ds_name, _, config = name.partition(":")
    try:
        ds = datasets.load_dataset(ds_name, config or None, split="train", streaming=True)
    except Exception as exc:
        raise BadInput(f"corpus hf:{name} needs the Hugging Face hub (unreachable: {type(exc).__name__}); "
                       "give a local text file instead") from None
    out = []
    for row in ds:
        out.append(str(row.get("text", "")))
        if limit and len(out) >= limit:
            break
    return out
