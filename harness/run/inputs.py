"""The examples a run feeds its program: real tokenized task text, or valid synthetic inputs from the specs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.common.errors import ProgramError
from harness.export.manifest import InputSpec

# Token ids any BERT-family vocabulary holds (ids below 1000 are [PAD]/[unused]/special tokens in bert-base-uncased)
SAFE_VOCAB = 1000


@dataclass
class RunInputs:
    examples: list[list[np.ndarray]]  # per example, one array per program input
    labels: np.ndarray | None  # int64 [N] when the examples come from a labelled task
    task: str | None
    encoded: dict[str, np.ndarray] | None = None  # [N, S] arrays by input name, for the eager reference


def from_task(specs: list[InputSpec], task_name: str, samples: int, vocab_size: int | None,
              tokenizer_path: Path | None = None) -> RunInputs:
    """`samples` real dev-split examples, tokenized to the program's sequence length."""
    from harness.common import data

    ids_spec = specs[0]
    if len(specs) != 3 or any(s.dtype != "int64" or len(s.shape) != 2 for s in specs):
        raise ProgramError("--task needs a program taking (input_ids, attention_mask, token_type_ids) as int64 [1, S]")
    seq_len = ids_spec.shape[1]
    task = data.load_task(task_name, split="dev", limit=samples)
    enc = data.encode(data.get_tokenizer(tokenizer_path), task.texts, seq_len=seq_len)
    if vocab_size and int(enc["input_ids"].max()) >= vocab_size:
        enc["input_ids"] = enc["input_ids"] % vocab_size  # toy vocabularies (tests): keep ids valid
    names = ("input_ids", "attention_mask", "token_type_ids")
    examples = [[enc[n][i : i + 1] for n in names] for i in range(len(task))]
    return RunInputs(examples=examples, labels=task.labels, task=task.name, encoded=enc)


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
