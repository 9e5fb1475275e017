"""What one export is asked to make, and every check of it that needs neither torch nor a model: `harness export`
runs these on each request of a sweep before it imports torch or lowers anything."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import BadInput
from harness.export.recipes import RecipeOptions, check_group_size, get_recipe


@dataclass
class ExportRequest:
    model: str = "mobilebert"
    checkpoint: Path | None = None
    recipe: str = "fp32"
    seq_len: int = 128
    head: str = "sequence_classification"  # for presets; a checkpoint brings its own head
    num_labels: int = 2
    options: RecipeOptions = field(default_factory=RecipeOptions)
    out_dir: Path | None = None
    name: str | None = None
    force: bool = False
    tokenizer: Path | None = None  # --tokenizer DIR|FILE; default: the checkpoint's own, else the shipped BERT vocab
    numerics_task: str | None = "rotten_tomatoes"  # real text for the agreement check (None: skip)
    numerics_samples: int = 64
    min_agreement: float = 0.99
    calibration_samples: int = 64  # real train-split examples for recipes that calibrate
    seq_len_given: bool = True  # False: seq_len is the default, cut to the model's max_position_embeddings


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,150}")
MAX_EXAMPLES = 100_000  # --numerics-samples and --calibration: far past any useful check, short of a MemoryError


def validate(req: ExportRequest) -> None:
    """Everything that can be checked before a model is built or lowered."""
    if req.seq_len < 1 or req.seq_len > 4096:
        raise BadInput(f"--seq-len {req.seq_len}: must be between 1 and 4096")
    recipe = get_recipe(req.recipe)  # unknown recipe -> BadInput before any work
    if req.name is not None and (not NAME.fullmatch(req.name) or ".." in req.name):
        raise BadInput(f"--name {req.name!r}: a plain file name (letters, digits, . _ + -), never a folder: "
                       "use --out DIR to choose where the program goes")
    if not (isinstance(req.min_agreement, (int, float)) and 0.0 <= req.min_agreement <= 1.0):
        raise BadInput(f"--min-agreement {req.min_agreement}: a fraction between 0 and 1 (0.99 = 99% top-1 agreement)")
    if not 1 <= req.numerics_samples <= MAX_EXAMPLES:
        raise BadInput(f"--numerics-samples {req.numerics_samples}: between 1 and {MAX_EXAMPLES:,} "
                       "(or --numerics-task none to skip the check)")
    if not 0 <= req.calibration_samples <= MAX_EXAMPLES:
        raise BadInput(f"--calibration {req.calibration_samples}: between 0 and {MAX_EXAMPLES:,}")
    if recipe.needs_calibration and req.options.calibration is None and req.calibration_samples < 1:
        raise BadInput(f"--calibration {req.calibration_samples}: recipe {req.recipe} needs at least 1 example")
    if req.recipe.startswith("int4") or req.options.quant_embedding == "4w":
        check_group_size(req.options.group_size)
    recipe.check_options(req.options)
    if req.checkpoint is not None and not Path(req.checkpoint).exists() and not _fetched(req.checkpoint):
        raise BadInput(f"--checkpoint {req.checkpoint}: no such directory (nor a Hugging Face ORG/NAME)")
    if req.tokenizer is not None and not Path(req.tokenizer).exists():
        raise BadInput(f"--tokenizer {req.tokenizer}: no such file or directory")


def _fetched(checkpoint) -> bool:
    """A checkpoint export() fetches before it builds anything: a hub ORG/NAME, or `minilm` (shipped offline)."""
    from harness.export import hub

    return hub.is_hub_id(checkpoint) or str(checkpoint) == "minilm"
