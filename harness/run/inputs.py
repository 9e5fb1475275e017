"""The examples a run feeds its program: real tokenized task text, or valid synthetic inputs from the specs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import BadInput, ProgramError
from program.manifest import InputSpec, ProgramManifest

# Token ids any BERT-family vocabulary holds (ids below 1000 are [PAD]/[unused]/special tokens in bert-base-uncased)
SAFE_VOCAB = 1000


@dataclass
class RunInputs:
    examples: list[list[np.ndarray]]  # per example, one array per program input
    labels: np.ndarray | None  # int64 [N] when the examples come from a labelled task
    task: str | None
    encoded: dict[str, np.ndarray] | None = None  # [N, S] arrays by input name, for the eager reference
    qa: Any = None  # (QATask, squad.Features) when the task is question answering: one example per window

NAMES = ("input_ids", "attention_mask", "token_type_ids")
CLASSIFICATION_HEADS = ("sequence_classification",)


def check_task_head(task_name: str, head: str | None) -> None:
    """A question-answering task needs a QA program and a classification task a classifier: else one line.

    On a QA program a local SQuAD-format file is read in full here, so a missing field is named before any export.
    """
    from data.squad import HUB_TASKS, is_qa_task, load_qa_task

    if head in (None, "unknown") or (Path(task_name).suffix and not Path(task_name).expanduser().exists()):
        return  # no head to check against, or a missing file that loading will name
    if is_qa_task(task_name) and head != "question_answering":
        raise BadInput(f"--task {task_name} is question answering but the program's head is {head}: "
                       "export with --head question_answering (or a QA checkpoint)")
    if head == "question_answering" and task_name not in HUB_TASKS and _json_object(task_name):
        load_qa_task(task_name)  # raises the one line naming what the file lacks ("data", a question's "id", ...)
        return
    if not is_qa_task(task_name) and head == "question_answering":
        raise BadInput(f"--task {task_name} is a classification task but the program answers questions: "
                       "use --task squad, squad_v2 or a SQuAD-format FILE.json")


def _json_object(name: str) -> bool:
    """A local .json file holding one JSON object: meant as SQuAD format (a classification file is a list)."""
    path = Path(name).expanduser()
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            return f.read(64).lstrip().startswith(b"{") and isinstance(json.loads(path.read_bytes()), dict)
    except (OSError, ValueError):
        return False


def tokenizer_source(manifest: ProgramManifest | None, tokenizer: Path | None) -> str | None:
    """--tokenizer, else the one the program was exported with, else an older manifest's checkpoint folder."""
    import data

    if tokenizer is not None:
        choice = data.choose_tokenizer(tokenizer, None, manifest.vocab_size if manifest else None)
        return choice.source
    if manifest is None:
        return None
    if manifest.tokenizer:
        return manifest.tokenizer
    if manifest.checkpoint:
        choice = data.choose_tokenizer(None, manifest.checkpoint, manifest.vocab_size)
        if choice.source is None:
            choice.load()  # raises the one line that says why no tokenizer fits
        return choice.source
    return None


def from_task(specs: list[InputSpec], task_name: str, samples: int, vocab_size: int | None,
              tokenizer_path: Path | str | None = None, head: str | None = None) -> RunInputs:
    """`samples` real dev-split examples (questions, for QA), tokenized to the program's sequence length."""
    import data
    from data.squad import is_qa_task

    ids_spec = specs[0]
    if len(specs) != 3 or any(s.dtype != "int64" or len(s.shape) != 2 for s in specs):
        raise ProgramError("--task needs a program taking (input_ids, attention_mask, token_type_ids) as int64 [1, S]")
    check_task_head(task_name, head)
    seq_len = ids_spec.shape[1]
    tok = data.get_tokenizer(tokenizer_path)
    if is_qa_task(task_name):
        return _from_qa_task(tok, task_name, samples, seq_len, vocab_size)
    task = data.load_task(task_name, split="dev", limit=samples)
    enc = data.encode(tok, task.texts, seq_len=seq_len, pairs=task.pairs)
    _fold(enc, vocab_size)
    examples = [[enc[n][i : i + 1] for n in NAMES] for i in range(len(task))]
    return RunInputs(examples=examples, labels=task.labels, task=task.name, encoded=enc)


def _fold(enc: dict[str, np.ndarray], vocab_size: int | None) -> None:
    if vocab_size and int(enc["input_ids"].max()) >= vocab_size:
        enc["input_ids"] = enc["input_ids"] % vocab_size  # toy vocabularies (tests): keep ids valid


def _from_qa_task(tok, task_name: str, samples: int, seq_len: int, vocab_size: int | None) -> RunInputs:
    """`samples` questions, each one example per context window (so a run may feed more examples than questions)."""
    from data.squad import features, load_qa_task

    task = load_qa_task(task_name, limit=samples)
    feats = features(tok, task.examples, seq_len)
    _fold(feats.arrays, vocab_size)
    examples = [[feats.arrays[n][i : i + 1] for n in NAMES] for i in range(len(feats.offsets))]
    return RunInputs(examples=examples, labels=None, task=task.name, encoded=feats.arrays, qa=(task, feats))


def synthetic(specs: list[InputSpec], count: int, vocab_size: int | None, seed: int = 0) -> RunInputs:
    """Valid inputs made from the specs: token ids inside the vocabulary, all-ones masks, zero token types."""
    rng = np.random.default_rng(seed)
    high = vocab_size or SAFE_VOCAB
    examples = []
    for _ in range(max(1, count)):
        ex = []
        for i, s in enumerate(specs):
            if any(d < 0 for d in s.shape):
                raise ProgramError(f"input {s.name} has a dynamic shape {s.shape}: give --task with real inputs")
            name = s.name.lower()
            if s.dtype in ("int64", "int32"):
                dt = np.dtype(s.dtype)
                if i == 0 or "ids" in name and "type" not in name:
                    ex.append(rng.integers(0, high, size=s.shape, dtype=dt))
                elif "type" in name or "segment" in name or i == 2:
                    ex.append(np.zeros(s.shape, dtype=dt))
                else:
                    ex.append(np.ones(s.shape, dtype=dt))
            elif s.dtype in ("float32", "float16", "float64"):
                ex.append(rng.standard_normal(size=s.shape).astype(s.dtype))
            elif s.dtype == "bool":
                ex.append(np.ones(s.shape, dtype=np.bool_))
            else:
                raise ProgramError(f"input {s.name} has dtype {s.dtype}, which the harness cannot synthesise")
        examples.append(ex)
    return RunInputs(examples=examples, labels=None, task=None)
