"""`harness export`: checkpoint or preset -> .pte + manifest, one program per recipe x seq_len (the options are
shared with `run`, which exports what it is not given)."""

from __future__ import annotations

from pathlib import Path

import click

from common.console import console, err_console, status
from common.errors import BadInput

SEQ_LENS_HELP = "Sequence length; a comma list (32,128,384) makes a sweep."


class GroupSize(click.ParamType):
    """--group-size: a whole number of weights per int4 group, or `row` (one group per row, stored as 0)."""
    name = "N|row"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        if str(value).strip().lower() == "row":
            return 0
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a whole number (32, 64, 128) nor `row`", param, ctx)


GROUP_SIZE = click.option("--group-size", default=32, show_default=True, type=GroupSize(), metavar="N|row",
                          help="int4 weights per group (32, 64, 128, ...), or `row`: one scale per output row "
                               "(channelwise).")


def int_list(value: str, flag: str, what: str) -> list[int]:
    """A comma list of positive integers (a sweep), or a usage error naming the flag."""
    try:
        out = [int(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma list of integers", param_hint=flag) from None
    if not out or any(v < 1 for v in out):
        raise click.BadParameter(f"{value!r}: {what} must be at least 1", param_hint=flag)
    twice = sorted({v for v in out if out.count(v) > 1})
    if twice:  # a sweep point listed twice would be measured twice and pooled as if it were one setting
        raise click.BadParameter(f"{value!r}: {', '.join(map(str, twice))} is listed twice (each sweep value once; "
                                 "use --repeat for more runs of one setting)", param_hint=flag)
    return out


def seq_lens(value: str) -> list[int]:
    return int_list(value, "--seq-len", "lengths")


def recipes_of(value: str) -> list[str]:
    """--quant: one recipe or a comma list (fp32,int8,int4), each once."""
    from harness.export.recipes import get_recipe

    names = [r.strip() for r in str(value).split(",")]
    for name in names:
        get_recipe(name)  # an unknown one: BadInput naming it and the known ones
    if len(set(names)) != len(names):
        raise BadInput(f"--quant {value}: a recipe is listed twice")
    return names


# One place for the export options' defaults: the click options show them, and export_requests() fills in what a
# caller (the demo, run, paper) leaves out.
DEFAULT_SEQ_LEN = 128  # when --seq-len is not given: cut to the model's max_position_embeddings, and said so
EXPORT_DEFAULTS = dict(model="mobilebert", checkpoint=None, tokenizer=None, recipe="fp32", seq_len=None,
                       head="sequence_classification", num_labels=2, group_size=32, quant_embedding=None, keep_fp32=(),
                       calibration=64, allow_partial=False, min_agreement=0.99, numerics_task="rotten_tomatoes",
                       numerics_samples=64, force=False)
D = EXPORT_DEFAULTS


def export_options(f):
    opts = [
        click.option("--model", "model", default=D["model"], show_default=True,
                     help="Preset (untrained random weights): mobilebert, mobilebert-tiny; the paper's variants "
                          "mobilebert-noopt (LayerNorm+GELU), mobilebert-nonorm-gelu, mobilebert-layernorm-relu; "
                          "rivals bert-base, distilbert-base, minilm-l6; ib-bert-large; test-tiny, ..."),
        click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
                     help="Hugging Face checkpoint of model_type mobilebert, bert (BERT, MiniLM, TinyBERT) or "
                          "distilbert: a folder (config.json + weights), a hub ORG/NAME, or `minilm` (the shipped "
                          "pretrained MiniLM-L6); its shape and head win."),
        click.option("--tokenizer", type=click.Path(path_type=Path), default=None, metavar="DIR|FILE",
                     help="tokenizer.json or vocab.txt (or a folder holding one) when the checkpoint has none."),
        click.option("--quant", "recipe", default=D["recipe"], show_default=True,
                     help="Recipe, or a comma list (fp32,int8,int4); `harness recipes` lists them."),
        click.option("--seq-len", "seq_len", default=None,
                     help=SEQ_LENS_HELP + f" Default {DEFAULT_SEQ_LEN}, cut to the model's max_position_embeddings "
                                          "when that is shorter (and said so)."),
        click.option("--head", default=D["head"], show_default=True,
                     help="Head for a preset: sequence_classification, question_answering, masked_lm, base."),
        click.option("--num-labels", default=D["num_labels"], show_default=True, type=int, help="Classes of a classification head."),
        GROUP_SIZE,
        click.option("--quant-embedding", type=click.Choice(["8w", "4w"]), default=None,
                     help="Quantize the embedding tables too."),
        click.option("--keep-fp32", multiple=True, metavar="PATTERN",
                     help="Keep modules whose name matches (glob) in float; repeatable."),
        click.option("--calibration", default=D["calibration"], show_default=True, type=int,
                     help="Real examples used to calibrate static recipes."),
        click.option("--allow-partial", is_flag=True, help="Export even if heavy ops stay outside XNNPACK."),
        click.option("--min-agreement", default=D["min_agreement"], show_default=True, type=float,
                     help="Top-1 agreement with fp32 eager below which the program is marked failed."),
        click.option("--numerics-task", default=D["numerics_task"], show_default=True,
                     help="Real text used to check numerics against fp32 eager ('none' to skip)."),
        click.option("--numerics-samples", default=D["numerics_samples"], show_default=True, type=int),
        click.option("--force", is_flag=True, help="Re-export even if the program is in the cache."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def export_requests(out=None, name=None, **given):
    """One ExportRequest per recipe x seq_len of the export options (`given`; the rest from EXPORT_DEFAULTS), each
    checked as far as it can be without torch or a model: a sweep is refused before its first point is exported."""
    from harness.export.recipes import RecipeOptions
    from harness.export.request import ExportRequest, validate

    unknown = set(given) - set(EXPORT_DEFAULTS)
    if unknown:
        raise TypeError(f"export_requests() got unexpected options {sorted(unknown)}")
    kw = {**EXPORT_DEFAULTS, **given}
    model, checkpoint, tokenizer, recipe, seq_len, head, num_labels = (
        kw[k] for k in ("model", "checkpoint", "tokenizer", "recipe", "seq_len", "head", "num_labels"))
    group_size, quant_embedding, keep_fp32, allow_partial, force, calibration = (
        kw[k] for k in ("group_size", "quant_embedding", "keep_fp32", "allow_partial", "force", "calibration"))
    numerics_task, numerics_samples, min_agreement = kw["numerics_task"], kw["numerics_samples"], kw["min_agreement"]

    reqs = []
    given_len = seq_len is not None
    for recipe, s in ((r, s) for r in recipes_of(recipe) for s in seq_lens(seq_len or str(DEFAULT_SEQ_LEN))):
        opts = RecipeOptions(group_size=group_size, quant_embedding=quant_embedding, keep_fp32=list(keep_fp32),
                             allow_partial=allow_partial)
        reqs.append(ExportRequest(
            model=model, checkpoint=checkpoint, tokenizer=tokenizer, recipe=recipe, seq_len=s, head=head,
            num_labels=num_labels, options=opts, out_dir=out, name=name, force=force, calibration_samples=calibration,
            numerics_task=None if numerics_task.lower() == "none" else numerics_task,
            numerics_samples=numerics_samples, min_agreement=min_agreement, seq_len_given=given_len))
        validate(reqs[-1])
    return reqs


def do_export(req, results: Path):
    from harness.export.exporter import export

    with status(f"exporting {req.checkpoint or req.model} ({req.recipe}, seq {req.seq_len})") as update:
        res = export(req, results, progress=update)
    print_export(res)
    return res


def print_export(res) -> None:
    m = res.manifest
    d = m.delegation or {}
    where = "from cache" if res.cached else f"in {m.export_seconds:.1f} s, peak RSS {m.export_peak_rss_mb:.0f} MB"
    console.print(f"[bold]{res.program}[/bold]  ({m.program_bytes / 2**20:.2f} MiB, {where})")
    what = f"checkpoint {Path(m.checkpoint).name}" if m.model == "checkpoint" and m.checkpoint else f"model {m.model}"
    arch = (m.config or {}).get("architectures") or []
    if (m.config or {}).get("model_type") in ("bert", "distilbert") and arch:
        what += f" ({m.config['model_type']}: {arch[0]}, transformers' modeling code)"
    source = "untrained random weights" if m.random_weights else m.weights_source
    console.print(f"  {what}{f' ({source})' if source else ''}, head {m.head}, "
                  f"recipe {m.recipe}, seq_len {m.seq_len}")
    for note in res.notes:
        console.print(f"  note: {note}")
    outside = ", ".join(f"{k} x{v}" for k, v in d.get("outside_by_op", {}).items()) or "none"
    console.print(f"  XNNPACK: {d.get('pieces', '?')} pieces, {d.get('ops_delegated', '?')} ops delegated; "
                  f"outside: {outside}")
    n = m.numerics or {}
    if n:
        parts = [f"top-1 agreement {n['top1_agreement']:.4f}"]
        if n.get("median_rel_logit_error") is not None:
            from harness.export.recipes import get_recipe

            parts.append(f"rel logit error median {n['median_rel_logit_error']:.2e} (bar "
                         f"{get_recipe(m.recipe).max_rel_logit_error:g}), max {n['max_rel_logit_error']:.2e}")
        else:
            parts.append(f"max rel logit error {n['max_rel_logit_error']:.2e}")
        if n.get("accuracy") is not None:
            parts.append(f"accuracy {n['accuracy']:.4f} (fp32 eager {n.get('reference_accuracy', float('nan')):.4f})")
        console.print(f"  numerics vs fp32 eager on {n.get('n', '?')} {n.get('task', '')} examples: " + ", ".join(parts))
    if m.status != "ok":
        err_console.print(f"error: export {res.program.stem}: {m.status_reason}", markup=False, highlight=False)


@click.command("export")
@export_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write NAME.pte + NAME.json here (the cache stays under RESULTS/programs).")
@click.option("--name", default=None, help="Program name (default MODEL-RECIPE-sSEQ).")
@click.pass_context
def export_command(ctx, out, name, **kw):
    """Export a model to an ExecuTorch program (.pte + .json manifest), lowered to XNNPACK.

    \b
    Examples:
      harness export --model mobilebert --quant fp32 --seq-len 128
      harness export --checkpoint ./my-mobilebert-sst2 --quant int8 --out programs/
      harness export --model mobilebert --quant int4 --group-size 64 --seq-len 32,128,384
      harness export --model bert-base --quant int8      # the paper's rival, random weights
      harness export --checkpoint minilm --quant int8    # the shipped pretrained MiniLM-L6 encoder (real weights)
    """
    failed = 0
    for req in export_requests(**kw, out=out, name=name):
        res = do_export(req, ctx.obj["results"])
        failed += res.manifest.status != "ok"
    if failed:
        ctx.exit(3)
