"""`make bench`'s memory: each benchmark's figures (NAME.json beside its table) against the last committed ones.

    .venv/bin/python benchmarks/regressions.py [--threshold 0.10] [--against HEAD]

A figure regresses when it moved the wrong way by more than the threshold. The baseline is the newest committed
NAME.json measured on this CPU (name and features), found in the history when the last commit's came from another
machine; with none from this CPU the figures are not compared at all, only listed: a faster or slower machine is not a
regression.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def committed(name: str, rev: str = "HEAD", cpu: str | None = None) -> dict | None:
    """results/NAME.json as `rev` has it, or None; with `cpu`, the newest version at or before `rev` measured on that
    CPU (sessions change machines: the last commit's figures may be another CPU's while an older one is this one's)."""
    if cpu is None:
        return _json_at(name, rev)
    log = subprocess.run(["git", "-C", str(RESULTS), "log", "--format=%H", rev, "--", f"./{name}.json"],
                         capture_output=True, text=True)
    fallback = None
    for sha in log.stdout.split() if log.returncode == 0 else []:
        found = _json_at(name, sha)
        if found is not None and found.get("cpu") == cpu:
            return found
        fallback = fallback or found
    return fallback  # nothing from this CPU: the newest, which compare() lists as not comparable


def _json_at(name: str, rev: str) -> dict | None:
    out = subprocess.run(["git", "-C", str(RESULTS), "show", f"{rev}:./{name}.json"], capture_output=True, text=True)
    try:
        return json.loads(out.stdout) if out.returncode == 0 else None
    except json.JSONDecodeError:
        return None


def compare(old: dict | None, new: dict, threshold: float) -> list[tuple[str, str]]:
    """[(kind, line)], kind one of regressed, improved, same, new, not comparable."""
    if old is None:
        return [("new", f"{k} = {v['value']:.4g} (nothing committed to compare with)")
                for k, v in new["figures"].items()]
    if old.get("cpu") != new.get("cpu"):
        return [("not comparable", f"measured on {new.get('cpu')}, the committed figures on {old.get('cpu')}: "
                 "a different machine is not a regression")]
    out = []
    for k, v in new["figures"].items():
        before = (old.get("figures") or {}).get(k)
        if not before or not before.get("value"):
            out.append(("new", f"{k} = {v['value']:.4g}"))
            continue
        change = v["value"] / before["value"] - 1
        worse = change > threshold if v["better"] == "lower" else change < -threshold
        better = change < -threshold if v["better"] == "lower" else change > threshold
        kind = "regressed" if worse else "improved" if better else "same"
        out.append((kind, f"{k}: {before['value']:.4g} -> {v['value']:.4g} ({change:+.1%}; {v['better']} is "
                          f"better, threshold {threshold:.0%})"))
    return out


def report(names: list[str], threshold: float, rev: str = "HEAD") -> int:
    """Print every benchmark's comparison; the number of regressed figures."""
    regressed = 0
    for name in names:
        path = RESULTS / f"{name}.json"
        if not path.is_file():
            continue
        new = json.loads(path.read_text())
        for kind, line in compare(committed(name, rev, new.get("cpu")), new, threshold):
            regressed += kind == "regressed"
            print(f"{name}: {kind}: {line}")
    return regressed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threshold", type=float, default=0.10)
    ap.add_argument("--against", default="HEAD", help="the commit whose figures are the baseline")
    a = ap.parse_args()
    names = sorted(p.stem for p in RESULTS.glob("*.json"))
    n = report(names, a.threshold, a.against)
    print(f"{n} figure{'s' if n != 1 else ''} regressed past {a.threshold:.0%}" if n else "no figure regressed")
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(main())
