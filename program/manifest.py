"""The program contract: NAME.pte beside NAME.json, the manifest that `run` and `report` trust."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import ProgramError
from program.schema import MAX_MANIFEST_BYTES, manifest_problem


@dataclass
class InputSpec:
    name: str
    dtype: str  # torch dtype name without the prefix: "int64", "float32", ...
    shape: list[int]


@dataclass
class ProgramManifest:
    name: str
    model: str  # preset name, or "checkpoint" when the shape came from a checkpoint's config.json
    head: str  # "sequence_classification" | "question_answering" | "masked_lm" | "base" | "unknown"
    recipe: str
    seq_len: int
    inputs: list[InputSpec]
    outputs: list[str]
    program_bytes: int
    program_sha256: str
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    checkpoint_source: dict[str, Any] = field(default_factory=dict)  # {"hub": ORG/NAME, "revision": sha} from the hub
    tokenizer: str | None = None  # the tokenizer file inputs are made with ("shipped:bert-base-uncased": the default)
    random_weights: bool = True  # True when no trained checkpoint was given: numbers say so
    # Where the weights came from, as every table shows it: "random (untrained)", "from checkpoint NAME@SHA12", or
    # "trained here: harness ..." when the harness trained the checkpoint (its trained_by.json); never "trained" on faith
    weights_source: str | None = None
    vocab_size: int | None = None
    num_labels: int | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the model config as HF field names
    recipe_options: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    delegation: dict[str, Any] = field(default_factory=dict)
    numerics: dict[str, Any] = field(default_factory=dict)  # quantized vs fp32 eager, when measured
    status: str = "ok"  # "ok" | "failed" (e.g. a numerics gate failed)
    status_reason: str | None = None
    export_seconds: float | None = None
    export_peak_rss_mb: float | None = None
    created_at: str | None = None
    cache_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ProgramManifest":
        d = dict(d)
        d["inputs"] = [InputSpec(**i) for i in d.get("inputs", [])]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def write(self, path: Path) -> None:
        from common.files import write_atomic

        write_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=False))

    @classmethod
    def read(cls, path: Path) -> "ProgramManifest":
        """The manifest at path, checked against the manifest schema (types, ranges, size) before it is trusted:
        its values size the inputs, name the run and are copied into every record of the program."""
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_MANIFEST_BYTES + 1)
            if len(raw) > MAX_MANIFEST_BYTES:
                raise ProgramError(f"manifest {path} is over {MAX_MANIFEST_BYTES >> 20} MiB (a manifest is a few kB; "
                                   "it is copied into every record): re-export the program")
            d = json.loads(raw)
        except (OSError, ValueError) as e:
            raise ProgramError(f"manifest {path} is unreadable or malformed: {e}") from None
        problem = manifest_problem(d)
        if problem:
            raise ProgramError(f"manifest {path}: {problem}: re-export the program (or fix the file)")
        return cls.from_dict(d)


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):  # Python 3.11+: reads into one reused buffer, 20% sooner than chunks
            return hashlib.file_digest(f, "sha256").hexdigest()
        h = hashlib.sha256()
        while block := f.read(1 << 20):
            h.update(block)
        return h.hexdigest()


def manifest_path(program: Path) -> Path:
    return Path(program).with_suffix(".json")
