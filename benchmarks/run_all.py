"""`make bench`: every benchmark table, written to benchmarks/results/, then every figure against the last committed
one on the same CPU (benchmarks/regressions.py). Full-size and slow (~1 h here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    [str(HERE / "peak.py")],
    ["-m", "model.params"],
    [str(HERE / "eager_vs_program.py")],
    [str(HERE / "quant_table.py")],
    [str(HERE / "export_time.py")],
    [str(HERE / "runner_vs_python.py")],
    [str(HERE / "stability.py")],
    [str(HERE / "train_throughput.py")],
    [str(HERE / "cli_startup.py")],
    [str(HERE / "run_overhead.py")],
    [str(HERE / "report_scale.py")],
    [str(HERE / "gemm_shapes.py")],
    [str(HERE / "peers.py"), "--rounds", "3", "--iterations", "10", "--warmup", "3", "--baseline", "--no-python"],
    [str(HERE / "int4_groups.py")],
]


def main() -> int:
    failed = []
    for args in SCRIPTS:
        script = args[1] if args[0] == "-m" else args[0]
        if args[0] != "-m" and not Path(script).exists():
            print(f"skip {script}: not present")
            continue
        print(f"== {script}", flush=True)
        if subprocess.run([sys.executable, *args], cwd=HERE.parent).returncode != 0:
            failed.append(script)
    if failed:
        print("failed: " + ", ".join(failed))
    # Every figure against the last committed one, on the same CPU only (benchmarks/regressions.py).
    from regressions import report

    print("== against the committed results")
    regressed = report(sorted(p.stem for p in (HERE / "results").glob("*.json")), threshold=0.10)
    print(f"{regressed} figures regressed past 10%" if regressed else "no figure regressed past 10%")
    return 1 if failed or regressed else 0


if __name__ == "__main__":
    sys.exit(main())
