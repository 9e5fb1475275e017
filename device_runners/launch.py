"""How a run job becomes one shell command line on a device: runner flags, then how the bundle is started there."""

from __future__ import annotations

import shlex

from device_runners.base import RunJob

QEMU = "qemu-aarch64"
# Never QEMU's default `-cpu max`: it advertises SME, XNNPACK then picks its SME kernels and int8 programs give
# wrong outputs (and run 13x slower). A Cortex-A76 is also what the phones' mid/big cores look like.
QEMU_CPU = "cortex-a76"
ARM64_LOADER = "lib/ld-linux-aarch64.so.1"
X86_64_LOADER = "lib/ld-linux-x86-64.so.2"


def runner_args(job: RunJob) -> list[str]:
    """The runner flags for a job (identical for the native and the Python runner)."""
    args = ["--program", job.program, "--inputs", job.inputs, "--result", job.result,
            "--warmup", str(job.warmup), "--iterations", str(job.iterations), "--min-seconds", f"{job.min_seconds:g}"]
    if job.warmup_seconds:
        args += ["--warmup-seconds", f"{job.warmup_seconds:g}"]
    if job.max_seconds:
        args += ["--max-seconds", f"{job.max_seconds:g}"]
    if job.outputs:
        args += ["--outputs", job.outputs]
    if job.threads:
        args += ["--threads", str(job.threads)]
    if job.affinity:
        args += ["--affinity", job.affinity]
    if job.etdump:
        args += ["--etdump", job.etdump]
    if job.near_cores_ns > 0 and job.settle_seconds > 0:
        args += ["--near-cores-ns", f"{job.near_cores_ns:.1f}", "--settle-seconds", f"{job.settle_seconds:g}"]
    return args


def bundle_command(bundle_dir: str, abi: str, args: list[str], qemu: bool = False, sysroot: str | None = None) -> str:
    """The shell command that starts the runner of the bundle at bundle_dir (a path on the device).

    Bundles start through their own glibc loader, so they need nothing from the device but a kernel (an x86_64
    Android emulator has no glibc at all). Under QEMU
    with a `sysroot` the runner is started the classic way instead (`-L sysroot`, the sysroot's glibc).
    """
    d = bundle_dir.rstrip("/") or "/"
    runner = f"{d}/bin/harness_runner"
    if abi == "x86_64":
        if qemu:
            raise ValueError("an x86_64 bundle does not run under qemu-aarch64")
        argv = [f"{d}/{X86_64_LOADER}", "--library-path", f"{d}/lib", runner]
    elif abi == "arm64-v8a":
        if qemu and sysroot:
            argv = [QEMU, "-cpu", QEMU_CPU, "-L", sysroot, runner]
        else:
            argv = [f"{d}/{ARM64_LOADER}", "--library-path", f"{d}/lib", runner]
            if qemu:
                argv = [QEMU, "-cpu", QEMU_CPU, *argv]
    else:
        raise ValueError(f"unknown ABI {abi!r}")
    return shlex.join(argv + list(args))


def python_runner_command(args: list[str], python: str = "python3") -> str:
    """The command for the Python runner (device_runners must be importable by that python)."""
    return shlex.join([python, "-m", "device_runners.python_runner", *args])


def job_command(job: RunJob, bundle_dir: str, abi: str, qemu: bool = False, sysroot: str | None = None) -> str:
    """bundle_command for a RunJob."""
    return bundle_command(bundle_dir, abi, runner_args(job), qemu=qemu, sysroot=sysroot)
