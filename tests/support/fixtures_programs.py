"""Tiny real ExecuTorch programs for tests: token ids -> embedding -> linear, lowered to XNNPACK in a few seconds."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from device_runners.tensorfile import write_tensors


class TinyTokenModel(torch.nn.Module):
    """The shape of a classifier over token ids (int64 in, float32 logits out), small enough to export in seconds."""

    def __init__(self, vocab: int = 64, dim: int = 16, labels: int = 3):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.proj = torch.nn.Linear(dim, dim)
        self.head = torch.nn.Linear(dim, labels)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.proj(self.embed(input_ids)))
        return self.head(h.mean(dim=1))


def tiny_model(vocab: int = 64, seed: int = 0) -> TinyTokenModel:
    torch.manual_seed(seed)
    return TinyTokenModel(vocab=vocab).eval()


def build_tiny_program(out_dir: Path, seq_len: int = 8, vocab: int = 64, seed: int = 0,
                       name: str = "tiny") -> tuple[Path, torch.nn.Module]:
    """Export TinyTokenModel for input shape [1, seq_len] to out_dir/NAME.pte; returns (path, eager model)."""
    model = tiny_model(vocab, seed)
    example = (torch.zeros(1, seq_len, dtype=torch.int64),)
    exported = torch.export.export(model, example)
    return _lower_and_write(exported, out_dir, name), model


def build_tiny_int8_program(out_dir: Path, seq_len: int = 8, vocab: int = 64, seed: int = 0,
                            name: str = "tiny-int8") -> tuple[Path, torch.nn.Module]:
    """TinyTokenModel, static int8 (PT2E XNNPACKQuantizer, calibrated on random tokens), lowered to XNNPACK."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    model = tiny_model(vocab, seed)
    example = (torch.zeros(1, seq_len, dtype=torch.int64),)
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    with torch.no_grad():
        prepared = prepare_pt2e(torch.export.export(model, example).module(), quantizer)
        for ex in token_examples(16, seq_len, vocab, seed=seed + 100):
            prepared(torch.from_numpy(ex[0]))
        quantized = convert_pt2e(prepared)
    exported = torch.export.export(quantized, example)
    return _lower_and_write(exported, out_dir, name), model


def cached_tiny_program(seq_len: int = 8, vocab: int = 64, seed: int = 0,
                        int8: bool = False) -> tuple[Path, torch.nn.Module]:
    """build_tiny_program (or its int8 twin), exported once per machine (export costs ~10-30 s here) and reused."""
    import executorch.version

    key = (f"tiny{'-int8' if int8 else ''}-s{seq_len}-v{vocab}-r{seed}-et{executorch.version.__version__}"
           f"-torch{torch.__version__}")
    root = Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness") / "test-programs"
    path = root / f"{key}.pte"
    if not path.is_file():
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            build = build_tiny_int8_program if int8 else build_tiny_program
            built, _ = build(Path(tmp), seq_len, vocab, seed, name=key)
            built.replace(path)
    return path, tiny_model(vocab, seed)


def token_examples(n: int, seq_len: int = 8, vocab: int = 64, seed: int = 1) -> list[list[np.ndarray]]:
    """n examples of one int64 [1, seq_len] tensor of random token ids."""
    rng = np.random.default_rng(seed)
    return [[rng.integers(0, vocab, size=(1, seq_len), dtype=np.int64)] for _ in range(n)]


def write_token_inputs(path: Path, n: int, seq_len: int = 8, vocab: int = 64, seed: int = 1) -> list[list[np.ndarray]]:
    examples = token_examples(n, seq_len, vocab, seed)
    write_tensors(path, examples)
    return examples


def eager_outputs(model: torch.nn.Module, examples: list[list[np.ndarray]]) -> list[np.ndarray]:
    with torch.no_grad():
        return [model(*[torch.from_numpy(a) for a in ex]).numpy() for ex in examples]


def _lower_and_write(exported, out_dir: Path, name: str) -> Path:
    """Lower an exported program to XNNPACK and write it as out_dir/name.pte."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.pte"
    path.write_bytes(program.buffer)
    return path
