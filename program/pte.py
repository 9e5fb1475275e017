"""A .pte on disk: is it a program, does it match its manifest, and what does it take as inputs.

Anything that parses the flatbuffer happens in a child process: a damaged program can abort the process that loads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from common.errors import ProgramError
from program.manifest import InputSpec, ProgramManifest, manifest_path, sha256_file
from program.pte_inputs import SCALAR_TYPES, read_input_specs


def check_file(path: Path) -> Path:
    """A readable file that starts like an ExecuTorch program, or a ProgramError naming it."""
    path = Path(path)
    if not path.exists():
        raise ProgramError(f"program {path}: no such file")
    if not path.is_file():
        raise ProgramError(f"program {path}: not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ProgramError(f"program {path}: cannot read it ({e.strerror})") from None
    if len(head) < 8 or head[4:6] != b"ET":
        what = "empty" if not head else "not an ExecuTorch program (no ET header)"
        raise ProgramError(f"program {path}: {what}")
    return path


def manifest_for(path: Path) -> ProgramManifest | None:
    """The program's manifest if it has one, verified against the program's sha256."""
    mpath = manifest_path(path)
    if not mpath.exists():
        return None
    manifest = ProgramManifest.read(mpath)
    sha = sha256_file(path)
    if manifest.program_sha256 != sha:
        raise ProgramError(
            f"program {path} does not match its manifest {mpath.name} (sha256 {sha[:12]} != "
            f"{manifest.program_sha256[:12]}): the file was changed or damaged; re-export it"
        )
    check_inputs(path, manifest, mpath)
    return manifest


def check_inputs(path: Path, manifest: ProgramManifest, mpath: Path) -> None:
    """The manifest's inputs and seq_len are the program's own. The inputs file is made from the manifest: one that
    disagrees would be found on the device, after the push, and blamed on that file."""
    try:
        actual = read_input_specs(path)
    except (OSError, ValueError):  # a layout the direct read does not know: ask the runtime (seconds)
        actual = [(s.dtype, list(s.shape)) for s in input_specs(inspect(path))]
    said = [(s.dtype, list(s.shape)) for s in manifest.inputs]

    def spec(dtype, shape):
        return f"{dtype} {shape}"

    if len(said) != len(actual):
        raise ProgramError(f"manifest {mpath} lists {len(said)} inputs, but program {path.name} takes {len(actual)} "
                           f"({', '.join(spec(*a) for a in actual)}): re-export the program (or fix the manifest)")
    for i, (s, a) in enumerate(zip(said, actual)):
        if s != a:
            raise ProgramError(f"manifest {mpath} says input {i} is {spec(*s)}, but program {path.name} takes "
                               f"{spec(*a)}: re-export the program (or fix the manifest)")
    if said and said[0][1] and manifest.seq_len != said[0][1][-1]:
        raise ProgramError(f"manifest {mpath} says seq_len {manifest.seq_len}, but program {path.name} takes "
                           f"{said[0][1][-1]} tokens ({spec(*actual[0])}): re-export the program (or fix the manifest)")


def inspect(path: Path, timeout: float = 120, cache_dir: Path | None = None) -> dict:
    """Method names, input/output specs and planned memory of a program, read in a child process (a damaged program
    can abort the process that loads it). With cache_dir, the answer is kept there by the program's sha256, so the
    same program is inspected once, not on every run (the child costs seconds: it loads the ExecuTorch runtime)."""
    cached = Path(cache_dir) / f"{sha256_file(path)}.json" if cache_dir is not None else None
    damaged = False
    if cached is not None and cached.is_file():
        try:
            return json.loads(cached.read_text())
        except ValueError:
            damaged = True  # a damaged cache entry: inspect again, and replace it
    info = _inspect_child(path, timeout)
    # written once: when another process answered meanwhile (the cache is per machine), its answer stays as it is
    if cached is not None and (damaged or not cached.is_file()):
        from common.errors import StoreError
        from common.files import ensure_dir, write_atomic

        try:
            ensure_dir(cached.parent)
            write_atomic(cached, json.dumps(info))
        except StoreError:  # a cache that cannot be written only costs the next run the child again
            pass
    return info


def _inspect_child(path: Path, timeout: float) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-m", "program.pte", str(path)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if proc.returncode != 0:
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or [f"exit code {proc.returncode}"]
        if proc.returncode < 0:
            tail = [f"the runtime aborted (signal {-proc.returncode})"]
        raise ProgramError(f"program {path} could not be loaded: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load_forward(source, method: str = "forward"):
    """A program's method loaded in this process, keeping its Program (and bytes) alive as long as the method.

    executorch.runtime's Method holds no reference to its Program: with `load_program(x).load_method(m)` the
    temporary Program is freed under the method and a later execute() reads freed memory (seen here as a segfault
    in a long test session)."""
    import executorch.kernels.quantized  # noqa: F401  registers quantized_decomposed kernels (embedding tables)
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(source)
    loaded = program.load_method(method)
    loaded._harness_program = program
    return loaded


def input_specs(info: dict, method: str = "forward") -> list[InputSpec]:
    meta = info["methods"].get(method)
    if meta is None:
        raise ProgramError(f"program has no method {method!r} (it has {', '.join(info['methods'])})")
    return [InputSpec(f"input_{i}", t["dtype"], t["sizes"]) for i, t in enumerate(meta["inputs"])]


def _inspect_here(path: str) -> dict:
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(path)
    methods = {}
    for name in sorted(program.method_names):
        meta = program.metadata(name)

        def spec(t):
            return {"dtype": SCALAR_TYPES.get(int(t.dtype()), f"scalar{int(t.dtype())}"), "sizes": list(t.sizes()),
                    "nbytes": t.nbytes()}

        methods[name] = {
            "inputs": [spec(meta.input_tensor_meta(i)) for i in range(meta.num_inputs())],
            "outputs": [spec(meta.output_tensor_meta(i)) for i in range(meta.num_outputs())],
        }
    return {"methods": methods, "vocab_size": _vocab_size(path)}


def _vocab_size(path: str) -> int | None:
    """Rows of the embedding table that the first input indexes (the token-id vocabulary), from the flatbuffer."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    try:
        prog = deserialize_pte_binary(Path(path).read_bytes())
        prog = getattr(prog, "program", prog)
        plan = prog.execution_plan[0]
        ops = [o.name for o in plan.operators]
        first_input = plan.inputs[0]
        for chain in plan.chains:
            for ins in chain.instructions:
                a = ins.instr_args
                if hasattr(a, "op_index") and "embedding" in ops[a.op_index] and first_input in a.args:
                    return int(plan.values[a.args[0]].val.sizes[0])
    except Exception:  # an unusual program: fall back to ids every BERT-family vocabulary holds
        return None
    return None


if __name__ == "__main__":
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    try:
        print(json.dumps(_inspect_here(sys.argv[1])))
    except Exception as e:  # reported to the parent as one line
        print(f"{type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        sys.exit(1)
