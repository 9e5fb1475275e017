"""Question-answering tasks in SQuAD's shape: SQuAD v1.1 / v2.0 through `datasets`, or any local SQuAD-format JSON.

A SQuAD file is the dev set as a whole (the official evaluation scores every question of it), so there is no
split to choose: `load_qa_task` returns its questions in file order.

Features: [CLS] question [SEP] context window [SEP] at the program's seq_len; a context longer than one window is
cut into windows that overlap by `doc_stride` tokens (transformers' run_qa.py meaning of the word), each keeping its
tokens' character offsets so a predicted span maps back to the context text (harness/run/squad.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import BadInput

MLPERF_SEQ_LEN, MLPERF_DOC_STRIDE, MLPERF_MAX_QUERY = 384, 128, 64
HUB_TASKS = {"squad": ("rajpurkar/squad", "1.1"), "squad_v2": ("rajpurkar/squad_v2", "2.0")}


@dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list[str]  # gold answer texts (several annotators); empty for an unanswerable v2.0 question
    answer_starts: list[int] = field(default_factory=list)  # character offsets of `answers` in `context`


@dataclass
class QATask:
    name: str
    examples: list[QAExample]
    version: str  # "1.1" | "2.0": v2.0 has unanswerable questions and scores the empty answer
    source: str
    metric: str = "f1"

    def __len__(self) -> int:
        return len(self.examples)


def is_qa_task(name: str) -> bool:
    """True for squad, squad_v2 and a local JSON file in SQuAD's layout ({"data": [{"paragraphs": ...}]})."""
    if name in HUB_TASKS:
        return True
    path = Path(name).expanduser()
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            if not f.read(64).lstrip().startswith(b"{"):
                return False  # a JSON list of records, or JSON lines: a classification file
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(doc, dict) and "data" in doc


def _field(obj, key: str, kind, where: str, path: Path):
    if not isinstance(obj, dict) or key not in obj:
        raise BadInput(f"{path}: {where} has no {key!r} field (not SQuAD format)")
    value = obj[key]
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise BadInput(f"{path}: {where}.{key} is {type(value).__name__}, expected {names}")
    return value


def parse_squad(doc, path: Path) -> tuple[list[QAExample], str]:
    """Examples of a SQuAD-format document; every missing or mistyped field is named with where it is."""
    data = _field(doc, "data", list, "the file", path)
    examples, v2 = [], str(doc.get("version", "")).startswith("v2") if isinstance(doc, dict) else False
    for a, article in enumerate(data):
        for p, para in enumerate(_field(article, "paragraphs", list, f"data[{a}]", path)):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(para, "context", str, where, path)
            for q, qa in enumerate(_field(para, "qas", list, where, path)):
                w = f"{where}.qas[{q}]"
                impossible = bool(qa.get("is_impossible", False)) if isinstance(qa, dict) else False
                v2 |= isinstance(qa, dict) and "is_impossible" in qa
                answers = _field(qa, "answers", list, w, path)
                texts = [_field(ans, "text", str, f"{w}.answers[{i}]", path) for i, ans in enumerate(answers)]
                starts = [_field(ans, "answer_start", int, f"{w}.answers[{i}]", path) for i, ans in enumerate(answers)]
                if not texts and not impossible:
                    raise BadInput(f"{path}: {w} has no answers and is not marked is_impossible")
                examples.append(QAExample(str(_field(qa, "id", (str, int), w, path)),
                                          _field(qa, "question", str, w, path), context,
                                          [] if impossible else texts, [] if impossible else starts))
    return examples, "2.0" if v2 else "1.1"


def _from_hub(name: str) -> tuple[list[QAExample], str, str]:
    import datasets

    repo, version = HUB_TASKS[name]
    try:
        ds = datasets.load_dataset(repo, split="validation")
    except Exception as exc:  # datasets raises many types when the hub is unreachable
        raise BadInput(f"task {name!r} needs the Hugging Face hub (offline here: {type(exc).__name__}); "
                       "give a local SQuAD-format JSON file instead (--task FILE.json)") from None
    examples = [QAExample(str(r["id"]), r["question"], r["context"], list(r["answers"]["text"]),
                          [int(s) for s in r["answers"]["answer_start"]]) for r in ds]
    return examples, version, f"hf:{repo}"


def load_qa_task(name: str, limit: int | None = None) -> QATask:
    """The questions of squad, squad_v2 or a local SQuAD-format JSON file (the first `limit` of them)."""
    if name in HUB_TASKS:
        examples, version, source = _from_hub(name)
        task_name = name
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            raise BadInput(f"task file {path} does not exist")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadInput(f"{path}: not readable JSON ({e})") from None
        examples, version = parse_squad(doc, path)
        task_name, source = path.stem, str(path)
    if limit is not None:
        examples = examples[:limit]
    if not examples:
        raise BadInput(f"task {name!r} has no questions")
    return QATask(task_name, examples, version, source)


@dataclass
class Features:
    """Program inputs for QA: one row per context window, and what maps each row back to its question."""

    arrays: dict[str, np.ndarray]  # input_ids, attention_mask, token_type_ids: int64 [F, seq_len]
    example_index: np.ndarray  # int64 [F]: the question each window belongs to
    offsets: list[list[tuple[int, int] | None]]  # per window, per token: (start, end) in the context, or None
    doc_stride: int
    max_query_len: int


def default_lengths(seq_len: int) -> tuple[int, int]:
    """(doc_stride, max_query_len) scaled from MLPerf's 128 and 64 at seq_len 384."""
    return max(1, seq_len * MLPERF_DOC_STRIDE // MLPERF_SEQ_LEN), max(1, seq_len * MLPERF_MAX_QUERY // MLPERF_SEQ_LEN)


def _cut_question(tok, question: str, max_tokens: int) -> str:
    """The question truncated to its first max_tokens wordpieces (MLPerf's max_query_length), cut at a boundary."""
    tok.no_truncation()
    enc = tok.encode(question, add_special_tokens=False)
    if len(enc.ids) <= max_tokens:
        return question
    return question[: enc.offsets[max_tokens - 1][1]]


def features(tok, examples: list[QAExample], seq_len: int, doc_stride: int | None = None,
             max_query_len: int | None = None) -> Features:
    """Tokenize every question with its context into overlapping windows of seq_len tokens, with offsets."""
    stride_default, query_default = default_lengths(seq_len)
    doc_stride = stride_default if doc_stride is None else doc_stride
    max_query_len = query_default if max_query_len is None else max_query_len
    room = seq_len - max_query_len - 3  # context tokens a window holds when the question is at its longest
    if room < 1 or doc_stride >= room:
        raise BadInput(f"seq_len {seq_len} is too short for question answering (question up to {max_query_len} "
                       f"tokens, windows overlapping by {doc_stride}): export at a longer --seq-len (MLPerf: 384)")
    pad_id = tok.token_to_id("[PAD]") or 0
    rows: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "token_type_ids": []}
    example_index, offsets = [], []
    for i, ex in enumerate(examples):
        question = _cut_question(tok, ex.question, max_query_len)
        tok.no_padding()
        tok.enable_truncation(max_length=seq_len, stride=doc_stride, strategy="only_second")
        first = tok.encode(question, ex.context)
        for enc in [first, *first.overflowing]:
            pad = seq_len - len(enc.ids)
            rows["input_ids"].append(list(enc.ids) + [pad_id] * pad)
            rows["attention_mask"].append(list(enc.attention_mask) + [0] * pad)
            rows["token_type_ids"].append(list(enc.type_ids) + [0] * pad)
            offsets.append([off if sid == 1 else None for off, sid in zip(enc.offsets, enc.sequence_ids)]
                           + [None] * pad)
            example_index.append(i)
    tok.no_truncation()
    arrays = {k: np.asarray(v, dtype=np.int64).reshape(len(v), seq_len) for k, v in rows.items()}
    return Features(arrays, np.asarray(example_index, dtype=np.int64), offsets, doc_stride, max_query_len)
