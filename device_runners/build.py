"""Build the native runner into a per-ABI bundle (bin/harness_runner + lib/), cached by a content hash.

Bundles are self-contained: they carry the glibc loader and libraries (arm64: from Debian's cross packages; x86_64:
the build machine's), so they start anywhere a Linux kernel runs their ABI (qemu-user here; an Android phone or the
x86_64 Android emulator via adb, not yet verified there) through `lib/LOADER --library-path lib bin/harness_runner`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from common.errors import BadInput, RunnerError
from common.files import cache_dir

ABIS = ("x86_64", "arm64-v8a")
NATIVE_DIR = Path(__file__).parent / "native"
# The runtime, the XNNPACK delegate, the portable+optimized kernels, the threadpool; quantized kernels for q/dq ops
# left outside the delegate; etdump for --etdump. They register themselves when loaded: link them --no-as-needed.
ET_LIBS = ("libexecutorch.so", "libexecutorch_backend_xnnpack.so", "libexecutorch_kernels_optimized.so",
           "libexecutorch_threadpool.so", "libexecutorch_kernels_quantized.so", "libexecutorch_etdump.so")
# What the self-contained arm64 bundle brings from /usr/aarch64-linux-gnu/lib (measured: nothing else is needed).
GLIBC_LIBS = ("ld-linux-aarch64.so.1", "libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1",
              "libpthread.so.0", "libdl.so.2")
AARCH64_SYSROOT = Path("/usr/aarch64-linux-gnu")
X86_64_LIBS = ("ld-linux-x86-64.so.2", *GLIBC_LIBS[1:])
X86_64_LIB_DIRS = (Path("/lib64"), Path("/lib/x86_64-linux-gnu"), Path("/usr/lib/x86_64-linux-gnu"))
LOADERS = {"x86_64": "ld-linux-x86-64.so.2", "arm64-v8a": "ld-linux-aarch64.so.1"}
COMPILERS = {"x86_64": ("g++", "g++"), "arm64-v8a": ("aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu")}
# The command-line front end and the benchmark core it shares with the iOS app (device_runners/ios/app).
CORE_SOURCES = ("runner.cpp", "runner_core.cpp")
CFLAGS = ("-std=c++17", "-O2", "-DC10_USING_CUSTOM_GENERATED_MACROS", "-DET_USE_THREADPOOL")


def default_cache_dir() -> Path:
    """$HARNESS_CACHE/runners, else ~/.cache/harness/runners."""
    return cache_dir("runners")


def executorch_version() -> str:
    from common.versions import version

    return version("executorch").split("+")[0]


def _et_package() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        raise RunnerError("the executorch package is not installed in this Python: pip install executorch")
    return Path(list(spec.submodule_search_locations)[0])


def _compiler(abi: str) -> tuple[str, str]:
    """(compiler path, its version line); RunnerError naming the Debian package when it is missing."""
    exe, package = COMPILERS[abi]
    path = shutil.which(exe)
    if path is None:
        raise RunnerError(f"no {exe} to build the {abi} runner: install Debian package {package}")
    out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    return path, out.splitlines()[0] if out else exe


def _sources() -> list[Path]:
    return sorted(p for p in NATIVE_DIR.iterdir() if p.suffix in (".cpp", ".h"))


def bundle_key(abi: str, compiler_version: str) -> str:
    """Content hash of everything that changes the bundle: sources, executorch version, abi, compiler, flags."""
    h = hashlib.sha256()
    for p in _sources():
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    h.update("\0".join([executorch_version(), abi, compiler_version, *CFLAGS, *ET_LIBS, *GLIBC_LIBS,
                        *X86_64_LIBS]).encode())
    return h.hexdigest()[:16]


def _aarch64_et_libs(cache_dir: Path) -> Path:
    """The manylinux_2_28_aarch64 wheel's libraries, downloaded once with pip and unzipped into the cache."""
    version = executorch_version()
    dest = cache_dir / "wheels" / f"executorch-{version}-aarch64-lib"
    if all((dest / n).is_file() for n in ET_LIBS):
        return dest
    wheels = cache_dir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    pattern = f"executorch-{version}-*manylinux_2_28_aarch64.whl"
    if not list(wheels.glob(pattern)):
        cmd = [sys.executable, "-m", "pip", "download", f"executorch=={version}", "--platform",
               "manylinux_2_28_aarch64", "--only-binary=:all:", "--no-deps", "-q", "-d", str(wheels)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not list(wheels.glob(pattern)):
            raise RunnerError(f"could not download the aarch64 executorch {version} wheel from PyPI "
                              f"({' '.join(cmd)}): {proc.stderr.strip().splitlines()[-1:]}")
    tmp = Path(tempfile.mkdtemp(dir=wheels))
    with zipfile.ZipFile(sorted(wheels.glob(pattern))[-1]) as z:
        for name in ET_LIBS:
            (tmp / name).write_bytes(z.read(f"executorch/lib/{name}"))
    _publish(tmp, dest, replace=dest.exists() and not all((dest / n).is_file() for n in ET_LIBS))
    return dest


def _publish(tmp: Path, dest: Path, replace: bool) -> None:
    """Move a finished directory into place. A concurrent build that got there first wins (its copy may be in use),
    unless `replace` asks to swap it out."""
    if replace:
        shutil.rmtree(dest, ignore_errors=True)
    try:
        tmp.rename(dest)
    except OSError:
        if not dest.is_dir():
            raise
    shutil.rmtree(tmp, ignore_errors=True)


def _compile(abi: str, compiler: str, key: str, lib_dir: Path, out: Path) -> None:
    et = _et_package()
    include = et / "include"
    cmd = [compiler, *CFLAGS, f'-DHARNESS_ET_VERSION="{executorch_version()}"', f'-DHARNESS_RUNNER_HASH="{key}"',
           f"-I{include}", f"-I{include}/executorch/runtime/core/portable_type/c10",
           *[str(NATIVE_DIR / n) for n in CORE_SOURCES], "-o", str(out), f"-L{lib_dir}",
           "-lexecutorch", "-Wl,--no-as-needed",
           *[f"-l{n[3:-3]}" for n in ET_LIBS if n != "libexecutorch.so"],
           "-Wl,--as-needed", "-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags"]
    if abi == "arm64-v8a":
        # Resolve the wheel libraries' own glibc/libstdc++ needs against the cross sysroot at link time.
        cmd += [f"-Wl,-rpath-link,{lib_dir}", f"-Wl,-rpath-link,{AARCH64_SYSROOT / 'lib'}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RunnerError(f"compiling the {abi} runner failed:\n{proc.stderr[-4000:]}")


def build_bundle(abi: str, cache_dir: Path | None = None, force: bool = False) -> Path:
    """The bundle directory for `abi` (bin/harness_runner, lib/, bundle.json), built on first use and cached."""
    if abi not in ABIS:
        raise BadInput(f"unknown ABI {abi!r}: expected one of {', '.join(ABIS)}")
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    compiler, compiler_version = _compiler(abi)
    key = bundle_key(abi, compiler_version)
    bundle = cache_dir / f"{abi}-{key}"
    if (bundle / "bundle.json").is_file() and not force:
        return bundle

    t0 = time.perf_counter()
    cache_dir.mkdir(parents=True, exist_ok=True)
    if abi == "arm64-v8a":
        if not (AARCH64_SYSROOT / "lib" / "ld-linux-aarch64.so.1").is_file():
            raise RunnerError(f"no arm64 glibc under {AARCH64_SYSROOT}: install Debian package g++-aarch64-linux-gnu")
        et_libs = _aarch64_et_libs(cache_dir)
    else:
        et_libs = _et_package() / "lib"
    tmp = Path(tempfile.mkdtemp(prefix=f".{abi}-", dir=cache_dir))
    try:
        (tmp / "bin").mkdir()
        (tmp / "lib").mkdir()
        for name in ET_LIBS:
            shutil.copy2(et_libs / name, tmp / "lib" / name)
        for name, src in _glibc_files(abi):  # copy the files the sonames point at, under the soname
            shutil.copyfile(src.resolve(), tmp / "lib" / name)
            os.chmod(tmp / "lib" / name, 0o755)
        _compile(abi, compiler, key, tmp / "lib", tmp / "bin" / "harness_runner")
        files = {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
        meta = {"abi": abi, "key": key, "executorch": executorch_version(), "compiler": compiler_version,
                "self_contained": True, "build_seconds": round(time.perf_counter() - t0, 2),
                "bytes": sum(files.values()), "files": files,
                "start": f"lib/{LOADERS[abi]} --library-path lib bin/harness_runner"}
        (tmp / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n")
        _publish(tmp, bundle, replace=force or not (bundle / "bundle.json").is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return bundle


def _glibc_files(abi: str) -> list[tuple[str, Path]]:
    """(soname, file) for the loader and C/C++ runtime libraries the bundle carries."""
    if abi == "arm64-v8a":
        return [(n, AARCH64_SYSROOT / "lib" / n) for n in GLIBC_LIBS]
    out = []
    for name in X86_64_LIBS:
        src = next((d / name for d in X86_64_LIB_DIRS if (d / name).exists()), None)
        if src is None:
            raise RunnerError(f"no {name} on this machine for the self-contained x86_64 bundle "
                              "(looked in " + ", ".join(map(str, X86_64_LIB_DIRS)) + ")")
        out.append((name, src))
    return out


def bundle_info(bundle: Path) -> dict:
    """The bundle.json written at build time (abi, key, versions, sizes, build seconds)."""
    return json.loads((Path(bundle) / "bundle.json").read_text())
