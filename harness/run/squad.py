"""SQuAD the way MLPerf scores MobileBERT: windows over each context, the standard span search, EM and F1.

The windows a program sees are made by data.squad.features.
Post-processing: per question, the n-best start and end tokens of every window, spans inside the context, end >=
start, at most `max_answer_len` tokens, scored start + end logit; for SQuAD v2.0 the empty answer wins when the
null score ([CLS] start + end, lowest over windows) beats the best span by more than `null_threshold`.
Metrics: exact match and F1 as the official evaluate-v1.1.py / evaluate-v2.0.py define them (lowercase, drop
punctuation and the articles a/an/the, collapse whitespace; F1 over whitespace tokens; best over gold answers).
"""

from __future__ import annotations

import collections
import re
import string

import numpy as np

from data.squad import Features, QAExample

N_BEST = 20
MAX_ANSWER_LEN = 30  # tokens


def predict(examples: list[QAExample], feats: Features, start_logits: np.ndarray, end_logits: np.ndarray,
            version_2: bool = False, n_best: int = N_BEST, max_answer_len: int = MAX_ANSWER_LEN,
            null_threshold: float = 0.0) -> dict[str, str]:
    """Question id -> predicted answer text ("" when v2.0 says the question has no answer)."""
    start_logits = np.asarray(start_logits, dtype=np.float64).reshape(len(feats.offsets), -1)
    end_logits = np.asarray(end_logits, dtype=np.float64).reshape(len(feats.offsets), -1)
    by_example = collections.defaultdict(list)
    for f, e in enumerate(feats.example_index):
        by_example[int(e)].append(f)
    out = {}
    for e, ex in enumerate(examples):
        best_score, best_text, null_score = -np.inf, "", np.inf
        for f in by_example.get(e, []):
            s, t, offs = start_logits[f], end_logits[f], feats.offsets[f]
            null_score = min(null_score, s[0] + t[0])
            for i in np.argsort(s)[::-1][:n_best]:
                for j in np.argsort(t)[::-1][:n_best]:
                    if offs[i] is None or offs[j] is None or j < i or j - i + 1 > max_answer_len:
                        continue
                    if s[i] + t[j] > best_score:
                        best_score, best_text = s[i] + t[j], ex.context[offs[i][0]: offs[j][1]]
        if version_2 and (best_score == -np.inf or null_score - best_score > null_threshold):
            best_text = ""
        out[ex.id] = best_text
    return out


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (the official scripts' normalisation)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, gold: str, version_2: bool = False) -> float:
    pred_toks, gold_toks = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if version_2 and (not pred_toks or not gold_toks):
        return float(pred_toks == gold_toks)  # v2.0: the empty answer is right only for an unanswerable question
    common = collections.Counter(pred_toks) & collections.Counter(gold_toks)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_toks), same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def evaluate(examples: list[QAExample], predictions: dict[str, str], version_2: bool = False) -> dict:
    """{"exact_match", "f1"} in [0, 1] over every question (the official scripts print these x100)."""
    em = f1 = 0.0
    answered = unanswerable = 0
    for ex in examples:
        pred = predictions.get(ex.id, "")
        golds = [a for a in ex.answers if normalize_answer(a)] if version_2 else list(ex.answers)
        if not golds:
            golds = [""]  # v2.0: an unanswerable question has the empty answer as its only gold
            unanswerable += 1
        else:
            answered += 1
        em += max(exact_match(pred, g) for g in golds)
        f1 += max(f1_score(pred, g, version_2) for g in golds)
    n = len(examples)
    return {"exact_match": em / n, "f1": f1 / n, "n": n, "has_answer": answered, "no_answer": unanswerable}
