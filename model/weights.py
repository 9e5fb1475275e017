"""Load and save Hugging Face MobileBERT checkpoints (config.json + safetensors or pytorch_model.bin).

Our modules carry the paper's names; `hf_key_map` translates each of them to transformers' name, one to one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from model.config import MobileBertConfig
from model.mobilebert import HEADS, MobileBertModel

# transformers' class name in config.json "architectures" <-> our head name
ARCHITECTURES = {
    "MobileBertModel": "base",
    "MobileBertForSequenceClassification": "sequence_classification",
    "MobileBertForQuestionAnswering": "question_answering",
    "MobileBertForMaskedLM": "masked_lm",
    "MobileBertForPreTraining": "pretraining",
    "MobileBertForNextSentencePrediction": "next_sentence",
}
HEAD_TO_ARCH = {v: k for k, v in ARCHITECTURES.items()}

_RULES = [  # (our name pattern, transformers' name), applied in order to each key
    (r"^mlm\.transform\.", "cls.predictions.transform.dense."),
    (r"^mlm\.norm\.", "cls.predictions.transform.LayerNorm."),
    (r"^mlm\.extra\.", "cls.predictions.dense."),
    (r"^mlm\.bias$", "cls.predictions.bias"),
    (r"^mlm\.decoder_weight$", "cls.predictions.decoder.weight"),
    (r"^mlm\.decoder_bias$", "cls.predictions.decoder.bias"),
    (r"^nsp\.", "cls.seq_relationship."),
    (r"\bpooler\.", "pooler.dense."),
    (r"\bembeddings\.word\.", "embeddings.word_embeddings."),
    (r"\bembeddings\.position\.", "embeddings.position_embeddings."),
    (r"\bembeddings\.token_type\.", "embeddings.token_type_embeddings."),
    (r"\bembeddings\.trigram_conv\.", "embeddings.embedding_transformation."),
    (r"\blayers\.(\d+)\.", r"encoder.layer.\1."),
    (r"\.attention\.(query|key|value)\.", r".attention.self.\1."),
    (r"\.attention\.out\.", ".attention.output.dense."),
    (r"\.attention\.norm\.", ".attention.output.LayerNorm."),
    (r"\.input_bottleneck\.", ".bottleneck.input."),
    (r"\.kq_bottleneck\.", ".bottleneck.attention."),
    (r"\.output_bottleneck\.", ".output.bottleneck."),
    (r"\.norm\.(weight|bias)$", r".LayerNorm.\1"),
]
_FFN_PARTS = {"up": "intermediate.dense", "down": "output.dense", "norm": "output.LayerNorm"}


def _hf_name(key: str, n_ffn: int) -> str:
    # transformers keeps the first n-1 stacked FFNs in `ffn.i` and the last one in the block's own
    # intermediate/output modules.
    def ffn(m: re.Match) -> str:
        i, part = int(m.group(1)), _FFN_PARTS[m.group(2)]
        return f".{part}." if i == n_ffn - 1 else f".ffn.{i}.{part}."

    key = re.sub(r"\.ffns\.(\d+)\.(up|down|norm)\.", ffn, key)
    for pattern, repl in _RULES:
        key = re.sub(pattern, repl, key)
    return key


def hf_key_map(model: nn.Module) -> dict[str, str]:
    """Our state_dict key -> transformers' key, for every parameter of `model`."""
    mapping = {k: _hf_name(k, model.config.num_feedforward_networks) for k in model.state_dict()}
    assert len(set(mapping.values())) == len(mapping), "key mapping is not one to one"
    return mapping


def to_hf_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights under transformers' names (tied decoder weights left out, as transformers saves them)."""
    own = model.state_dict()
    return {hf: own[k].detach().clone().contiguous() for k, hf in hf_key_map(model).items()}


def _ignorable(key: str, config: MobileBertConfig) -> bool:
    """Keys some checkpoints carry that hold nothing of their own (buffers, copies of tied weights)."""
    tied_copies = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")
    return key.endswith("embeddings.position_ids") or (key in tied_copies and config.tie_word_embeddings)


def load_hf_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Copy transformers-named weights into `model`; every unknown, missing or mis-shaped key is named."""
    state_dict = dict(state_dict)
    if (model.config.tie_word_embeddings and "cls.predictions.bias" not in state_dict
            and "cls.predictions.decoder.bias" in state_dict):
        state_dict["cls.predictions.bias"] = state_dict["cls.predictions.decoder.bias"]  # older exports
    if isinstance(model, MobileBertModel) and any(k.startswith("mobilebert.") for k in state_dict):
        state_dict = {k.removeprefix("mobilebert."): v for k, v in state_dict.items()}  # a head checkpoint's body
    wanted = {hf: ours for ours, hf in hf_key_map(model).items()}
    own = model.state_dict()
    problems, loaded = [], {}
    for key in sorted(state_dict):
        if key not in wanted:
            if not _ignorable(key, model.config):
                problems.append(f"unexpected key {key}")
        elif not state_dict[key].is_floating_point() and own[wanted[key]].is_floating_point():
            problems.append(f"{key} is stored as {str(state_dict[key].dtype).removeprefix('torch.')}, not a float "
                            "type: the weights would be cast (and mostly lost)")
        elif tuple(state_dict[key].shape) != tuple(own[wanted[key]].shape):
            problems.append(f"shape mismatch for {key}: checkpoint {tuple(state_dict[key].shape)}, "
                            f"model {tuple(own[wanted[key]].shape)}")
        else:
            loaded[wanted[key]] = state_dict[key]
    problems += [f"missing key {hf}" for hf in sorted(wanted) if hf not in state_dict]
    if problems:
        more = f"; and {len(problems) - 25} more" if len(problems) > 25 else ""  # a BERT checkpoint names hundreds
        raise ValueError(f"{source} does not fit {type(model).__name__} ({len(problems)} problems): "
                              + "; ".join(problems[:25]) + more)
    model.load_state_dict(loaded, strict=True)


def check_config_file(file: Path, source: str | None = None) -> dict:
    """config.json as a dict, refused in one line when it is not readable or describes another kind of model."""
    where = source or str(file)
    try:
        d = json.loads(Path(file).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: not readable JSON ({e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{where}: not a JSON object")
    archs = [a for a in d.get("architectures") or [] if isinstance(a, str)]
    kind = d.get("model_type") or ("mobilebert" if not archs or all(a in ARCHITECTURES for a in archs) else None)
    if kind != "mobilebert":
        what = f"model_type is {kind!r}" if kind else f"architectures {', '.join(archs)}"
        raise ValueError(f"{where}: {what}, not MobileBERT: the harness exports MobileBERT checkpoints only "
                              "(model_type 'mobilebert')")
    return d


def _read_config(path: Path) -> MobileBertConfig:
    file = path / "config.json"
    if not file.is_file():
        raise ValueError(f"{file}: no config.json in the checkpoint directory")
    d = check_config_file(file, str(file))
    try:
        return MobileBertConfig.from_hf_dict(d)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{file}: {e}") from None


def _read_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(str(file))
        sd = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # safetensors, pickle and zip each fail in their own way on a damaged file
        raise ValueError(f"{file}: unreadable weights file ({type(e).__name__}: {e})") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{file}: not a state dict of tensors")
    return sd


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory: model.safetensors, pytorch_model.bin, or their sharded index."""
    path = Path(path)
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (path / name).is_file():
            return _read_tensors(path / name)
    for name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = path / name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, AttributeError, TypeError) as e:
                raise ValueError(f"{index}: not a readable shard index ({e})") from None
            sd = {}
            for shard in shards:
                if not (path / shard).is_file():
                    raise ValueError(f"{path / shard}: shard named in {index.name} is missing")
                sd.update(_read_tensors(path / shard))
            return sd
    raise ValueError(f"{path}: no model.safetensors or pytorch_model.bin in the checkpoint directory")


def _guess_head(keys) -> str:
    keys = set(keys)
    if "qa_outputs.weight" in keys:
        return "question_answering"
    if "classifier.weight" in keys:
        return "sequence_classification"
    mlm, nsp = "cls.predictions.bias" in keys, "cls.seq_relationship.weight" in keys
    if mlm and nsp:
        return "pretraining"
    return "masked_lm" if mlm else "next_sentence" if nsp else "base"


def load_checkpoint(path: str | os.PathLike) -> tuple[nn.Module, str]:
    """Build the model a Hugging Face checkpoint directory describes and load its weights; returns (model, head)."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: checkpoint directory does not exist")
    config = _read_config(path)
    state_dict = read_weights(path)
    archs = json.loads((path / "config.json").read_text()).get("architectures") or []
    known = [ARCHITECTURES[a] for a in archs if a in ARCHITECTURES]
    head = known[0] if known else _guess_head(state_dict)
    model = HEADS[head](config)
    load_hf_state_dict(model, state_dict, source=str(path))
    return model.eval(), head


def head_of(model: nn.Module) -> str:
    for head, cls in HEADS.items():
        if type(model) is cls:
            return head
    raise TypeError(f"not a MobileBERT model: {type(model).__name__}")


def save_checkpoint(model: nn.Module, path: str | os.PathLike, safe_serialization: bool = True) -> Path:
    """Write config.json (+architectures) and model.safetensors (or pytorch_model.bin) that transformers loads.

    Written into a temporary sibling directory first, so a crash never leaves half a file; other files already in
    `path` (a tokenizer's vocab.txt) are kept, stale weights in the other format are removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = model.config.to_hf_dict()
    config["architectures"] = [HEAD_TO_ARCH[head_of(model)]]
    state_dict = to_hf_state_dict(model)
    weights = "model.safetensors" if safe_serialization else "pytorch_model.bin"
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if safe_serialization:
            from safetensors.torch import save_file
            save_file(state_dict, str(tmp / weights), metadata={"format": "pt"})
        else:
            torch.save(state_dict, tmp / weights)
        if not path.exists():
            tmp.rename(path)
            return path
        for stale in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                      "pytorch_model.bin.index.json"):
            if stale != weights:
                (path / stale).unlink(missing_ok=True)
        os.replace(tmp / weights, path / weights)
        os.replace(tmp / "config.json", path / "config.json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
