"""Pre-training distillation: a teacher, a MobileBERT student, a corpus, a strategy -> a Hugging Face checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from model.distill import models
from model.distill.loop import LoopConfig, batch_indices, pick_device, read_state_shared, train_loop, trim
from model.distill.losses import Shapes, check_transfer
from model.distill.strategies import TransferWeights, plan, stage_loss


def mask_tokens(ids: np.ndarray, special: np.ndarray, rng: np.random.Generator, prob: float, vocab: int,
                mask_id: int) -> tuple[np.ndarray, np.ndarray]:
    """BERT's masking: `prob` of the real tokens become targets; 80% [MASK], 10% random, 10% kept."""
    ids = ids.copy()
    labels = np.full_like(ids, -100)
    pick = (rng.random(ids.shape) < prob) & ~special
    for row in np.flatnonzero(~pick.any(1) & (~special).any(1)):  # at least one target per row with text
        pick[row, rng.choice(np.flatnonzero(~special[row]))] = True
    labels[pick] = ids[pick]
    roll = rng.random(ids.shape)
    ids[pick & (roll < 0.8)] = mask_id
    rand = pick & (roll >= 0.8) & (roll < 0.9)
    ids[rand] = rng.integers(0, vocab, rand.sum())
    return ids, labels


class PairBatches:
    """Seeded MLM + next-sentence batches from a list of texts: draw k is always the same batch."""

    def __init__(self, texts: list[str], tok, seq_len: int, batch_size: int, seed: int, mlm_prob: float, vocab: int):
        if len(texts) < 2:
            raise ValueError(f"the corpus has {len(texts)} usable line(s): next-sentence pairs need at least 2")
        self.texts, self.tok, self.seq_len = texts, tok, seq_len
        self.batch_size, self.seed, self.mlm_prob, self.vocab = batch_size, seed, mlm_prob, vocab
        self.mask_id = tok.token_to_id("[MASK]")
        self.special_ids = np.asarray([tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")])
        if self.mask_id is None:
            raise ValueError("the tokenizer has no [MASK] token: MLM needs a BERT-style vocabulary")

    def __call__(self, draw: int) -> dict[str, torch.Tensor]:
        from data import encode

        n = len(self.texts)
        rng = np.random.default_rng([self.seed, 7, draw])
        idx = batch_indices(n, self.batch_size, self.seed, draw)
        is_next = rng.random(len(idx)) < 0.5
        second = np.where(is_next, (idx + 1) % n, rng.integers(0, n, len(idx)))
        enc = encode(self.tok, [self.texts[i] for i in idx], self.seq_len, pairs=[self.texts[j] for j in second])
        special = np.isin(enc["input_ids"], self.special_ids)
        ids, labels = mask_tokens(enc["input_ids"], special, rng, self.mlm_prob, self.vocab, self.mask_id)
        batch = {"input_ids": ids, "attention_mask": enc["attention_mask"], "token_type_ids": enc["token_type_ids"],
                 "mlm_labels": labels, "nsp_labels": (~is_next).astype(np.int64)}  # 0 = B follows A (BERT)
        return trim({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()})


def _shapes(model) -> Shapes:
    c = model.config
    return Shapes(c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.vocab_size)


def distill(teacher_spec: str, student_spec: str, strategy: str, texts: list[str], out_dir: Path, cfg: LoopConfig,
            weights: TransferWeights = TransferWeights(), seq_len: int | None = None, mlm_prob: float = 0.15,
            below_lr_scale: float = 0.0, tokenizer=None, device=None, bound_seq_len=None) -> dict:
    """Train a MobileBERT student from a teacher with one of the paper's strategies; resumable stage by stage.

    Under torchrun every rank calls this alike: the teacher is replicated (frozen, no_grad), the student is DDP.
    """
    from data import tokenizer_for_model

    device = device or pick_device()
    out_dir = Path(out_dir)
    torch.manual_seed(cfg.seed)  # preset weights come from the run's seed, not from the caller's RNG state
    teacher = models.load(teacher_spec, "pretraining").to(device).eval()
    student = models.load(student_spec, "pretraining")
    if models.resolve(student_spec)[0] == "hf":
        raise ValueError(f"--student {student_spec}: the student must be a MobileBERT preset or checkpoint")
    check_transfer(_shapes(student), _shapes(teacher), weights.wanted())
    stages = plan(strategy, student.config.num_hidden_layers, weights, below_lr_scale)
    if not stages:
        raise ValueError("every loss weight is zero: nothing to train")
    tok = tokenizer or tokenizer_for_model(models.resolve(teacher_spec)[1], teacher.config.vocab_size)
    for spec, model in ((teacher_spec, teacher), (student_spec, student)):
        models.check_vocab(tok, model, spec)  # before anything is written
    limit = min(teacher.config.max_position_embeddings, student.config.max_position_embeddings)
    if bound_seq_len is not None:  # the caller's rule (the CLI: the default cut to the models and said so)
        seq_len = bound_seq_len([teacher, student])
    elif seq_len is None or seq_len > limit:
        if seq_len is not None:
            raise ValueError(f"seq_len {seq_len} exceeds the teacher's and student's max_position_embeddings ({limit})")
        seq_len = min(128, limit)
    batches = PairBatches(texts, tok, seq_len, cfg.batch_size, cfg.seed, mlm_prob, student.config.vocab_size)
    run_args = {"distill": {"teacher": teacher_spec, "student": student_spec, "strategy": strategy,
                            "weights": dataclasses.asdict(weights), "seq_len": seq_len, "mlm_prob": mlm_prob,
                            "below_lr_scale": below_lr_scale, "corpus_lines": len(texts)}}
    state = read_state_shared(out_dir)
    start = 0
    if state is not None:
        if state["args"].get("distill") != run_args["distill"]:
            raise ValueError(f"{out_dir} holds a distillation started with other settings: use another --out "
                           "or repeat the original command to resume")
        start = [s.name for s in stages].index(state["desc"])
    last: dict = {}
    for k, stage in enumerate(stages):
        if k < start:
            continue
        lr_scale = stage.prepare(student)
        loss_fn = stage_loss(stage, weights)
        layerwise = bool(stage.layers)

        def step_loss(model, batch, loss_fn=loss_fn, layerwise=layerwise):
            with torch.no_grad():
                t_out = models.outputs(teacher, batch, hidden=layerwise)
            return loss_fn(model, t_out, batch)

        stage_cfg = dataclasses.replace(cfg, lr_scale=lr_scale)
        stage_batches = lambda draw, k=k: batches(draw + k * 1_000_003)  # each stage sees fresh batches
        last = train_loop(student, step_loss, stage_batches, stage_cfg, out_dir, lambda m, d: models.save(m, d, tok),
                          desc=stage.name, device=device, args=run_args, step_offset=k * 7919,
                          final_stage=k == len(stages) - 1)
        last = {"stage": stage.name, **last}
    for p in student.parameters():
        p.requires_grad_(True)
    return last
