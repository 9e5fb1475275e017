"""Every example in `--help`, the README and docs/*.md runs as written.

The examples are collected, not listed: every line of a command's help that starts with `harness ` (or `$ harness`,
`torchrun ... -m harness.cli`), and every shell code block of README.md and docs/*.md that invokes `harness`. Each
block runs in document order in its own temporary folder (cwd), through a `harness` on PATH that is this checkout's
CLI, with a results store holding the runs the examples name (run ids, campaigns, tags). Examples that are heavy by
nature (full-size exports, long training, a phone, AWS, the internet) are listed in HEAVY with the reason: the fast
suite checks that click accepts each of them (command, options, values), HARNESS_SLOW=1 runs them. An example that
is neither cheap enough to run nor in HEAVY fails the suite: nothing is skipped silently.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from tests.support.cli import subcommands
from tests.support.paths import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# What a slow run can reach; examples that need more (a phone, AWS, the hub) run only when it is named here.
WITH = set(filter(None, os.environ.get("HARNESS_EXAMPLES_WITH", "").split(",")))

# Heavy examples, by key (the command as written: continuations joined, comment dropped; a script: "script: " and its
# first line) -> (what it needs beyond HARNESS_SLOW=1, why it is heavy). needs: "" (this machine, given time), or
# "phone" | "iphone" | "mac" | "board" | "aws" | "gpu" (run only when HARNESS_EXAMPLES_WITH names it, e.g.
# HARNESS_EXAMPLES_WITH=phone).
FULL = "exports the full-size MobileBERT (40-110 s per program here)"
FULL_RUN = "runs the full-size program exported by the example before it"
TINY = "exports a test-tiny program first (20-45 s here: torch's import, the lowering, the numerics check)"
TRAIN = "trains for minutes to hours on this CPU"
TINY_TRAIN = "trains a test-tiny student, layer by layer (about a minute here)"
PHONE = "needs an attached Android phone"
PAPER = "the paper's pre-training: days on GPUs, and the corpus from the hub"
HEAVY: dict[str, tuple[str, str]] = {
    "make demo": ("", "the main job: installs, trains the demo student once, six exports, eighteen runs"),
    "make test": ("", "the whole test suite (~20 min)"),
    "harness demo": ("", "the main job: trains the demo student once (3-9 min here), six exports, eighteen runs"),
    "harness demo --no-student --quant fp32,int8": ("", "two full-size exports, six runs"),
    "harness demo --checkpoint ./my-mobilebert-sst2 --task rotten_tomatoes": ("", FULL + " x3, nine runs"),
    "harness export --model mobilebert --quant int8": ("", FULL),
    "harness export --model mobilebert --quant fp32,int8": ("", FULL + " x2"),
    "harness export --model mobilebert --quant fp32 --seq-len 128": ("", FULL),
    "harness export --model mobilebert --quant int4 --group-size 64 --seq-len 32,128,384": ("", FULL + " x3"),
    "harness export --model mobilebert --quant int4 --group-size row": ("", FULL),
    "harness export --model mobilebert --quant int4 --group-size 128": ("", FULL),
    "harness export --checkpoint ./my-mobilebert-sst2 --quant int8 --out programs/": ("", FULL),
    "harness export --checkpoint ./my-mobilebert-sst2 --quant int4 --out programs/": ("", FULL),
    "harness run --program 'results/programs/mobilebert-int8-s128-*.pte' --device host --task rotten_tomatoes":
        ("", FULL_RUN),
    "harness run --program 'results/programs/mobilebert-int8-s128-*.pte' --device host": ("", FULL_RUN),
    "harness run --model mobilebert --quant int8 --device emu-arm64 --task rotten_tomatoes --samples 50":
        ("", FULL + ", then 2-4 s per inference under qemu"),
    "harness run --model mobilebert --quant int8 --seq-len 32,128,384 --device host": ("", FULL + " x3"),
    "harness run --model mobilebert --quant fp32,int8,int4 --repeat 3 --campaign nightly --tag branch=main":
        ("", FULL + " x3"),
    "harness run --model test-tiny --quant fp32,int8 --repeat 3 --target-ci 0.02 --max-repeats 6":
        ("", TINY + " x2, then at least six interleaved runs"),
    "harness run --model mobilebert --quant fp32,int8,int4 --repeat 3 --campaign nightly-7 --tag branch=main":
        ("", FULL + " x3"),
    "harness run --model test-tiny --head question_answering --seq-len 64 --task tests/fixtures/squad-tiny.json":
        ("", TINY),
    "harness run --model test-tiny --head question_answering --seq-len 64 --task tests/fixtures/squad-v2-tiny.json "
    "--device emu-arm64 --iterations 1": ("", TINY + ", then qemu"),
    "harness export --model bert-base --quant int8": ("", "exports BERT-base (4x MobileBERT's weights)"),
    "harness export --checkpoint minilm --quant int8": ("", "exports the 22.7M-parameter MiniLM-L6"),
    "harness paper --device host": ("", "exports the paper's six full-size rows, then dozens of runs (BERT-base: "
                                        "about 0.2 s per inference here)"),
    "harness paper --device host --quant fp32,int8": ("", "twelve full-size exports, then dozens of runs"),
    "script: python -": ("", "writes a small BERT checkpoint with transformers, then exports it twice (docs/paper.md)"),
    "harness paper --quick": ("", "six test-size exports and a campaign of runs (about a minute here)"),
    "harness paper --quick --device emu-arm64": ("", "six test-size exports, then their runs under qemu-aarch64"),
    "harness paper --rows bert-base,mobilebert --device pixel7 --threads 4": ("phone", PHONE),
    "harness sensitivity --quant int8": ("", "one quantized full-size model per layer (many minutes)"),
    "harness sensitivity --model mobilebert --quant int8": ("", "one quantized full-size model per layer"),
    "harness sensitivity --model mobilebert --quant int8 --samples 200": ("", "one quantized full-size model per layer"),
    "harness sensitivity --checkpoint ./my-mobilebert-sst2 --quant int4 --group-size 64": ("", "as above, int4"),
    "harness sensitivity --checkpoint ./my-mobilebert-sst2 --quant int4 --group-size 64 --samples 100":
        ("", "as above, int4"),
    "harness runner build --abi arm64-v8a": ("", "cross-compiles the runner; downloads the aarch64 wheel once"),
    "harness train --task rotten_tomatoes --model mobilebert-tiny --steps 300 --seq-len 64": ("", TRAIN),
    "harness train --task rotten_tomatoes --model minilm --steps 300 --seq-len 64": ("", TRAIN),
    "harness train --model mobilebert --layers 6 --teacher results/checkpoints/minilm-rotten_tomatoes --steps 1000":
        ("", TRAIN),
    "harness train --task rotten_tomatoes --model mobilebert-tiny --steps 20 --batch-size 8 --seq-len 32 --nproc 2":
        ("", "two torchrun processes of mobilebert-tiny (minutes here)"),
    "harness train --task rotten_tomatoes --model mobilebert-tiny --layers 4 --init-embeddings-from minilm "
    "--steps 750 --batch-size 32 --lr 1e-3 --seq-len 64 --threads 1 --save-every 50 "
    "--out results/checkpoints/mobilebert-tiny4-rt": ("", "the 19-minute training run of docs/training.md"),
    "harness train --task rotten_tomatoes --model minilm --steps 400 --batch-size 32 --lr 8e-5 --seq-len 64 "
    "--threads 2 --save-every 50 --out results/checkpoints/minilm-rt": ("", "the teacher of docs/training.md (25 min)"),
    "harness train --task rotten_tomatoes --model mobilebert-tiny --init-embeddings-from minilm "
    "--teacher results/checkpoints/minilm-rt --transfer-corpus imdb --transfer-limit 40000 --alpha 0.5 "
    "--temperature 2 --steps 1200 --batch-size 16 --lr 5e-4 --seq-len 64 --threads 1 --save-every 100 "
    "--out results/checkpoints/tiny24-kd": ("", "the 24-block student of docs/training.md (over an hour)"),
    "harness train --task rotten_tomatoes --model mobilebert-tiny --layers 4 --init-embeddings-from minilm "
    "--teacher results/checkpoints/minilm-rt --transfer-corpus imdb --transfer-limit 40000 --alpha 0.5 "
    "--temperature 2 --steps 3000 --batch-size 32 --lr 1e-3 --seq-len 64 --threads 1 --save-every 200 "
    "--out results/checkpoints/tiny4-kd": ("", "the 4-block student of docs/training.md (over an hour)"),
    "harness train --task rotten_tomatoes --model minilm --steps 200 --batch-size 32 --lr 8e-5 --seq-len 64 "
    "--threads 2 --save-every 50 --out results/checkpoints/minilm-rt": ("", "fine-tunes MiniLM-L6 (4 min here)"),
    "harness export --checkpoint results/checkpoints/minilm-rt --quant fp32,int8,int4 --seq-len 64":
        ("", "exports the MiniLM the training above writes (76 s here)"),
    "harness export --checkpoint 'results/checkpoints/demo-mobilebert-tiny-2blk-rt-*' --quant fp32,int8,int4 "
    "--seq-len 64": ("", "exports the student `make demo` trains (needs that demo first)"),
    "harness run --program 'results/programs/minilm-rt-*.pte' --program 'results/programs/demo-mobilebert-tiny-*.pte' "
    "--device host --task rotten_tomatoes --samples 1290 --repeat 3 --target-ci 0.02 --max-repeats 6 "
    "--wait-for-quiet 20 --campaign rivals": ("", "runs the six programs exported above, 18-36 runs (7 min here)"),
    "script: R=results": ("", "exports and runs the checkpoint the training run above writes (fp32, int8, int4)"),
    "harness distill --teacher test-tiny-teacher --student test-tiny --corpus rotten_tomatoes --steps 5 --seq-len 32":
        ("", TINY_TRAIN),
    "harness distill --teacher test-tiny-teacher --student test-tiny --corpus rotten_tomatoes --steps 5 --seq-len 32 "
    "--nproc 2": ("", TINY_TRAIN + ", on two torchrun processes"),
    "harness distill --teacher test-tiny-teacher --student test-tiny --corpus rotten_tomatoes --steps 5 --nproc 2":
        ("", TINY_TRAIN + ", on two torchrun processes"),
    "harness distill --teacher test-tiny-teacher --student test-tiny --corpus rotten_tomatoes --steps 20 --nproc 2":
        ("", TINY_TRAIN + ", on two torchrun processes"),
    "harness distill --teacher ib-bert-large --student mobilebert --strategy progressive "
    "--corpus hf:wikipedia:20220301.en --steps 24000": ("gpu", PAPER),
    "harness distill --teacher ib-bert-large --student mobilebert --strategy progressive "
    "--corpus hf:wikipedia:20220301.en --steps 24000 --optimizer lamb --lr 1.5e-3 --batch-size 256": ("gpu", PAPER),
    "harness distill --teacher ib-bert-large --student mobilebert --strategy progressive "
    "--corpus hf:wikipedia:20220301.en --steps 24000 --optimizer lamb --lr 1.5e-3 --batch-size 256 --seq-len 128 "
    "--out results/checkpoints/mobilebert-pd": ("gpu", PAPER),
    "harness train --task sst2 --model results/checkpoints/mobilebert-pd --steps 2000 --lr 5e-5":
        ("gpu", "fine-tunes the paper-scale student of the example before it on SST-2 from the hub"),
    "torchrun --standalone --nproc-per-node 8 -m harness.cli distill --teacher ib-bert-large --student mobilebert "
    "--corpus hf:wikipedia:20220301.en --steps 24000 --optimizer lamb --lr 1.5e-3 --batch-size 4096":
        ("gpu", PAPER + " (8 GPUs)"),
    "torchrun --standalone --nproc-per-node 8 -m harness.cli distill --teacher ib-bert-large --student mobilebert "
    "--strategy progressive --corpus hf:wikipedia:20220301.en --steps 24000 --optimizer lamb --lr 1.5e-3 "
    "--batch-size 4096 --grad-accum 4 --precision bf16 --out /shared/ckpt/mobilebert-pd": ("gpu", PAPER + " (8 GPUs)"),
    "torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint host0:29400 --rdzv-id mb1 "
    "-m harness.cli distill --teacher ib-bert-large --student mobilebert --strategy progressive "
    "--corpus hf:wikipedia:20220301.en --steps 24000 --optimizer lamb --lr 1.5e-3 --batch-size 4096 --grad-accum 4 "
    "--precision bf16 --out /shared/ckpt/mobilebert-pd": ("gpu", PAPER + " (two hosts of 8 GPUs)"),
    "harness devices install iphone15 --app build/HarnessRunner.ipa":
        ("iphone", "needs an attached iPhone and the app built and signed on a Mac (docs/devices.md)"),
    "harness devices install ios-simulator --app build/Build/Products/Release-iphonesimulator/HarnessRunner.app":
        ("mac", "needs macOS with Xcode: the iOS Simulator and the app's simulator build"),
    "harness devices add mypixel --adb": ("phone", PHONE),
    "harness devices add myphone --adb": ("phone", PHONE),
    "harness devices add lab-phone --adb 28121FDH2000AB": ("phone", PHONE + " with that serial"),
    "harness devices add myboard --ssh pi@raspberrypi.local": ("board", "needs a Raspberry Pi reachable over ssh"),
    "harness run --program programs/my-mobilebert-sst2-int4-s128.pte --device pixel7 --timing mlperf": ("phone", PHONE),
    "harness run --model mobilebert --quant int8 --seq-len 32,128,384 --device pixel7 --timing mlperf":
        ("phone", PHONE),
    "harness run --model mobilebert --quant int8 --device pixel7 --threads 1,2 --affinity big --affinity mid "
    "--max-start-temp 35 --cooldown 300": ("phone", PHONE),
    "harness run --model mobilebert --quant int8 --device myphone --max-start-temp 35 --cooldown 300 --affinity big "
    "--affinity mid --threads 1,2 --task rotten_tomatoes --samples 50": ("phone", PHONE + " (added as myphone)"),
    "harness farm run --program 'results/programs/mobilebert-int8-s128-*.pte' --pool '$POOL_ARN'":
        ("aws", "needs AWS credentials and a Device Farm pool ($POOL_ARN)"),
    "harness farm run --program 'results/programs/mobilebert-fp32-s128-*.pte' --program "
    "'results/programs/mobilebert-int8-s128-*.pte' --repeat 3 --pool arn:aws:devicefarm:us-west-2:"
    "123456789012:devicepool:1a2b3c4d-aaaa-bbbb-cccc-0123456789ab/5e6f7a8b-dddd-eeee-ffff-0123456789ab "
    "--task rotten_tomatoes": ("aws", "needs AWS credentials and your own Device Farm pool"),
    "script: export AWS_PROFILE=benchmarks": ("aws", "needs AWS credentials and your own Device Farm pool"),
}


@dataclass(frozen=True)
class Example:
    where: str  # "README.md:94" or "harness run --help"
    block: str  # examples of one block run in order, in one folder
    command: str  # as written: continuation lines joined
    key: str  # the command without its trailing comment (HEAVY's key)
    harness_argv: tuple[tuple[str, ...], ...]  # the argv after `harness` of every harness invocation in it


_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")
_LEADS = ("harness", "torchrun", "make")  # and `python benchmarks/...`


def _words(command: str) -> list[str]:
    """The words of the first simple command (up to a redirection, pipe or separator), as the shell splits them."""
    lex = shlex.shlex(command, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    words = []
    for w in lex:
        if w and set(w) <= set("();<>|&"):
            break
        words.append(w)
    return words


def _lead(words: list[str]) -> list[str]:
    """The words after leading VAR=value assignments."""
    i = 0
    while i < len(words) and _ASSIGN.match(words[i]):
        i += 1
    return words[i:]


def _is_command(line: str) -> bool:
    try:
        w = _lead(_words(line))
    except ValueError:
        return False
    return bool(w) and (w[0] in _LEADS or (w[0] == "python" and len(w) > 1 and w[1].startswith("benchmarks/")))


def _harness_argv(words: list[str]) -> tuple[str, ...] | None:
    w = _lead(words)
    if w and w[0] == "harness":
        return tuple(w[1:])
    if w and w[0] == "torchrun" and "harness.cli" in w:
        return tuple(w[w.index("harness.cli") + 1:])
    return None


def _logical_lines(lines: list[str]) -> list[str]:
    """Lines with their backslash continuations joined."""
    out: list[str] = []
    pending = ""
    for raw in lines:
        s = raw.strip()
        if s.endswith("\\"):
            pending += s[:-1].strip() + " "
            continue
        out.append(pending + s)
        pending = ""
    if pending:
        out.append(pending.strip())
    return out


def _example(where: str, block: str, command: str) -> Example:
    if _is_command(command):
        key = shlex.join(_words(command))
        argv = tuple(a for a in [_harness_argv(_words(command))] if a is not None)
    else:  # a shell script: each harness command in it is parsed on its own
        key = "script: " + shlex.join(_words(command.splitlines()[0]))
        simple = [part for line in _logical_lines(command.splitlines())
                  for part in re.split(r";|&&|\|\||\|", line)]
        simple = [re.sub(r"^\s*(do|then|else)\s+", "", p) for p in simple]
        argv = tuple(a for p in simple if _is_command(p) for a in [_harness_argv(_words(p))] if a is not None)
    return Example(where, block, command, key, argv)


def _block_examples(doc: str, first: int, lines: list[str]) -> list[Example]:
    """The examples of one code block whose first line is line `first` of `doc`; each named by its own line."""
    block = f"{doc}:{first}"
    starts = [first + i for i, ln in enumerate(lines) if i == 0 or not lines[i - 1].rstrip().endswith("\\")]
    logical = [(n, s) for n, s in zip(starts, _logical_lines(lines)) if s]
    prompts = [(n, s[2:]) for n, s in logical if s.startswith("$ ")]
    if prompts:  # a transcript: only the prompted lines are commands
        return [_example(f"{doc}:{n}", block, s) for n, s in prompts if _is_command(s)]
    if not any(_is_command(s) for _, s in logical):
        return []
    if all(_is_command(s) or s.startswith("#") for _, s in logical):
        return [_example(f"{doc}:{n}", block, s) for n, s in logical if _is_command(s)]
    return [_example(block, block, "\n".join(lines).strip())]  # a script (variables, loops): run as one


def markdown_examples(path: Path) -> list[Example]:
    """Shell code blocks (fenced sh/bash/console/plain, or indented by 4) that invoke a command."""
    name = path.relative_to(REPO).as_posix()
    lines = path.read_text().splitlines()
    found: list[Example] = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
        if m:
            indent, lang = len(m.group(1)), m.group(2)
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            if lang in ("", "sh", "bash", "shell", "console"):
                body = [ln[indent:] for ln in lines[i + 1:j]]
                found += _block_examples(name, i + 2, body)
            i = j + 1
            continue
        if lines[i].startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                j += 1
            body = [ln[4:] for ln in lines[i:j]]
            while body and not body[-1].strip():
                body.pop()
            found += _block_examples(name, i + 1, body)
            i = j
            continue
        i += 1
    return found


def help_examples() -> list[Example]:
    """The example lines of every command's help, one block per command."""
    from harness.cli import cli

    found: list[Example] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        where = " ".join(path) + " --help"
        text = "\n".join(t for t in (cmd.help, cmd.epilog) if t)
        lines = _logical_lines(text.splitlines())
        cmds = [ln[2:] if ln.startswith("$ ") else ln for ln in lines]
        found.extend(_example(where, where, c) for c in cmds if _is_command(c) and _lead(_words(c))[0] != "make")
        for name, sub in subcommands(cmd):
            walk(sub, [*path, name])

    walk(cli, ["harness"])
    return found


def all_examples() -> list[Example]:
    return help_examples() + [e for p in DOCS for e in markdown_examples(p)]


EXAMPLES = all_examples()


def test_examples_are_found():
    """The collector sees what a reader sees (if this fails, the collector or a document changed shape)."""
    where = {e.where.split(":")[0].split(" --help")[0] for e in EXAMPLES}
    assert {"README.md", "docs/tasks.md", "docs/training.md", "harness run", "harness report"} <= where
    keys = {e.key for e in EXAMPLES}
    assert "harness runs list" in keys and "make demo" in keys
    assert len(EXAMPLES) > 60


# ---- the fast suite: click accepts every example ------------------------------------------------------------------

def parse_only(argv: tuple[str, ...]) -> None:
    """Resolve the command and every option, and convert every value with its click type; run nothing."""
    from harness.cli import cli

    ctx = cli.make_context("harness", list(argv), resilient_parsing=False)
    cmd: click.Command = cli
    while isinstance(cmd, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]  # what is left for the subcommand (click 8.2+)
        if not rest:
            break
        name, sub, rest = cmd.resolve_command(ctx, rest)
        ctx = sub.make_context(name, rest, parent=ctx, resilient_parsing=False)  # extra arguments raise here
        cmd = sub


@pytest.mark.parametrize("ex", [e for e in EXAMPLES if e.harness_argv], ids=lambda e: f"{e.where}: {e.key[:60]}")
def test_every_example_parses(ex: Example):
    for argv in ex.harness_argv:
        try:
            parse_only(argv)
        except click.exceptions.Exit as e:  # --help / --version: click prints and exits 0
            assert e.exit_code == 0
        except click.ClickException as e:
            pytest.fail(f"{ex.where}: `{ex.command}` does not parse: {e.format_message()}")


def test_make_and_benchmark_examples_resolve():
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    for ex in EXAMPLES:
        w = _lead(_words(ex.key)) if _is_command(ex.key) else []
        if w[:1] == ["make"]:
            assert set(w[1:]) <= targets, f"{ex.where}: `{ex.command}`: no such make target"
        if w[:1] == ["python"]:
            assert (REPO / w[1]).is_file(), f"{ex.where}: `{ex.command}`: no such script"


def test_heavy_list_names_only_real_examples():
    """A HEAVY entry whose example was edited away would hide the new text: every key must still be an example."""
    stale = set(HEAVY) - {e.key for e in EXAMPLES}
    assert not stale, f"HEAVY names examples that no longer exist: {sorted(stale)}"


# ---- running them ---------------------------------------------------------------------------------------------------

def _record(run_id: str, campaign: str, recipe: str = "fp32", device: str = "host", status: str = "ok",
            median_ms: float = 12.0, seed: int = 0, **kw):
    import numpy as np

    from harness.run.stats import summarize
    from harness.store.record import RunRecord

    lat = [] if status == "failed" else np.random.default_rng(seed).lognormal(np.log(median_ms), 0.03, 40).tolist()
    return RunRecord(
        run_id=run_id, created_at=f"2026-12-01T0{seed % 10}:00:00Z", status=status, device=device,
        error="runner exited 1" if status == "failed" else None, model="mobilebert", model_id="mobilebert cls2",
        recipe=recipe, seq_len=128, random_weights=True, runner="native", threads=2, latencies_ms=lat,
        latency=summarize(lat) if lat else {}, load_ms=40.0, first_inference_ms=20.0,
        memory={"peak_rss_mb": 100.0, "peak_rss_method": "native runner process, /proc/self/status VmHWM",
                "program_mb": 93.5 if recipe == "fp32" else 36.0},
        campaign=campaign, timing=kw.pop("timing", "default"), **kw)


def seed_stores(root: Path) -> None:
    """The runs the examples name, as `harness run` would have stored them: ids 3f2a9c…/77b1e0…, campaigns nightly,
    nightly-1/2/6/7, pr-42 (tag branch=main) and rivals (docs/paper.md), a failed run on pixel7, mlperf-timed runs; main-results/ is the
    baseline store of `compare --baseline main-results pr-42`."""
    from harness.store.db import ResultsStore

    runs = [_record("3f2a9c1b0001", "nightly-1", seed=1, median_ms=12.0),
            _record("77b1e0aa0002", "nightly-2", seed=2, median_ms=11.9)]
    for i, camp in enumerate(["nightly", "nightly-6", "nightly-7", "pr-42", "rivals"]):
        slow = 100 if camp == "nightly-6" else 1  # a slow night: nightly-7's real runs (HARNESS_SLOW=1) are no regression
        runs += [_record(f"{camp}-fp32-{i}", camp, seed=3 + i, median_ms=12.0 * slow, tags={"branch": "main"}),
                 _record(f"{camp}-int8-{i}", camp, "int8", seed=4 + i, median_ms=5.0 * slow, tags={"branch": "main"})]
    runs += [_record("nightly-fail-0", "nightly", "int8", device="pixel7", status="failed", seed=5),
             _record("mlperf-int8-0", "nightly-7", "int8", seed=6, median_ms=5.1, timing="mlperf")]
    ResultsStore(root / "results").add_many(runs)
    ResultsStore(root / "main-results").add_many([_record(f"main-{r}", "main-1", r, seed=7, median_ms=ms)
                                                 for r, ms in (("fp32", 12.1), ("int8", 5.1))])


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """What each block's folder starts with: the seeded stores, the repo's tests/ (for tests/fixtures/...), and the
    device catalog the docs show (docs/devices.md) as my-lab.toml."""
    root = tmp_path_factory.mktemp("template")
    seed_stores(root)
    (root / "tests").symlink_to(REPO / "tests")
    toml = re.search(r"```toml\n(.*?)```", (REPO / "docs" / "devices.md").read_text(), re.S)
    (root / "my-lab.toml").write_text(toml.group(1))
    return root


def _env(folder: Path) -> dict[str, str]:
    bin_dir = folder / ".bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "harness"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m harness.cli "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env.update(PATH=f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep),
               XDG_CONFIG_HOME=str(folder / ".config"),  # `devices add` writes the user's catalog: keep it here
               HARNESS_CACHE=os.environ.get("HARNESS_CACHE") or str(Path.home() / ".cache" / "harness"),
               COLUMNS="120")
    env.pop("HARNESS_RESULTS", None)
    return env


def run_example(ex: Example, folder: Path, timeout: float) -> None:
    proc = subprocess.run(["bash", "-ec", ex.command], cwd=folder, env=_env(folder), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (f"{ex.where}: `{ex.command}` exited {proc.returncode}\n"
                                  f"stdout: {proc.stdout[-1500:]}\nstderr: {proc.stderr[-1500:]}")
    assert "Traceback" not in proc.stderr, f"{ex.where}: `{ex.command}`:\n{proc.stderr[-3000:]}"


def _groups(examples: list[Example], by) -> dict[str, list[Example]]:
    groups: dict[str, list[Example]] = {}
    for e in examples:
        groups.setdefault(by(e), []).append(e)
    return groups


def _runnable(e: Example) -> bool:
    return not (_is_command(e.key) and _lead(_words(e.key))[0] in ("make", "python"))  # those only resolve


def _document(e: Example) -> str:
    return e.where.rsplit(":", 1)[0] if e.where.endswith(tuple("0123456789")) else e.where


_READERS = {"report", "compare", "recipes", "devices", "runs list", "runs show", "results export", "runner build"}


def _reads_only(e: Example) -> bool:
    """Reads the results store and the catalog, changes neither (files it writes are its own: --output)."""
    for argv in e.harness_argv or [()]:
        words = [w for w in argv if not w.startswith("-")]
        if not words or not ({words[0], " ".join(words[:2])} & _READERS) or words[:2] == ["devices", "add"]:
            return False
    return bool(e.harness_argv)


def _fast_blocks() -> dict[str, list[Example]]:
    """Each block's cheap examples. One that reads only, and already ran on the same state (the seeded folder plus
    the same changes before it; `harness report` opens many blocks), is not run twice: it would give the same."""
    seen: set[tuple[str, ...]] = set()
    fast: dict[str, list[Example]] = {}
    for block, examples in BLOCKS.items():
        fast[block], state = [], ()
        for e in examples:
            if e.key in HEAVY or not _runnable(e):
                continue
            if _reads_only(e):
                if (*state, e.key) in seen:
                    continue
                seen.add((*state, e.key))
            else:
                state = (*state, e.key)
            fast[block].append(e)
    return fast


BLOCKS = _groups(EXAMPLES, lambda e: e.block)
FAST = _fast_blocks()


def _fast_items() -> list[tuple[str, list[Example]]]:
    """A block whose examples only read runs as one test per example (each a few seconds), else as one test."""
    items = []
    for block, examples in FAST.items():
        if examples and all(_reads_only(e) for e in examples):
            items += [(f"{block}: {e.key}", [e]) for e in examples]
        elif examples:
            items.append((block, examples))
    return items


@pytest.mark.parametrize("examples", [es for _, es in _fast_items()], ids=[name for name, _ in _fast_items()])
def test_cheap_examples_run_as_written(examples, template, tmp_path):
    """One folder per code block (or command's help), its examples in document order."""
    folder = tmp_path / "cwd"
    shutil.copytree(template, folder, symlinks=True)
    for ex in examples:
        run_example(ex, folder, timeout=300)  # a guard only: `runner build` on a fresh machine compiles


def _user_checkpoint(folder: Path) -> None:
    """./my-mobilebert-sst2, the user's own checkpoint the examples export: a full-size MobileBERT, as
    `save_pretrained()` writes it (no tokenizer files: the shipped vocabulary fits its 30522 entries)."""
    from model.config import get_preset
    from model.mobilebert import MobileBertForSequenceClassification
    from model.weights import save_checkpoint

    save_checkpoint(MobileBertForSequenceClassification(get_preset("mobilebert", num_labels=2)),
                    folder / "my-mobilebert-sst2")


@pytest.mark.slow
@pytest.mark.parametrize("document", list(_groups([e for e in EXAMPLES if any(x.key in HEAVY for x in BLOCKS[e.block])],
                                                  _document)))
def test_heavy_examples_run_as_written(document, template, tmp_path):
    """Every example of a document (or a command's help) in order, in one folder: later blocks use what earlier
    ones made (a checkpoint trained, then exported). Those that need what HARNESS_EXAMPLES_WITH does not name are
    left out, and the test says so at the end."""
    folder = tmp_path / "cwd"
    shutil.copytree(template, folder, symlinks=True)
    examples = [e for e in EXAMPLES if _document(e) == document and _runnable(e)]
    if any("my-mobilebert-sst2" in e.command for e in examples):
        _user_checkpoint(folder)
    left_out = []
    for ex in examples:
        needs, why = HEAVY.get(ex.key, ("", ""))
        if needs and needs not in WITH:
            left_out.append(f"`{ex.key}` ({why}; HARNESS_EXAMPLES_WITH={needs} runs it)")
            continue
        run_example(ex, folder, timeout=6 * 3600)
    if left_out:
        pytest.skip(f"{document}: ran the rest; left out " + "; ".join(left_out))
