"""A device snapshot from one POSIX shell snippet, so local, ssh, adb and qemu devices report the same fields.

The snippet only uses sh builtins, cat, grep, uname and getconf (present in busybox, toybox and coreutils), prints
one `@@section` marker per source and never fails: a missing file is simply an empty section.
"""

from __future__ import annotations

import re
from typing import Any

DEVINFO_SCRIPT = r"""
echo @@uname; uname -srm 2>/dev/null
echo @@hostname; uname -n 2>/dev/null
echo @@os; (grep '^PRETTY_NAME=' /etc/os-release 2>/dev/null || getprop ro.build.description 2>/dev/null) | head -n 1
echo @@online; getconf _NPROCESSORS_ONLN 2>/dev/null || grep -c '^processor' /proc/cpuinfo 2>/dev/null
echo @@cpuinfo; grep -E '^(processor|model name|Hardware|CPU implementer|CPU part|Model)[[:space:]]*:' /proc/cpuinfo 2>/dev/null
echo @@cpuflags; grep -m1 -E '^(flags|Features)[[:space:]]*:' /proc/cpuinfo 2>/dev/null
echo @@cpufreq
for d in /sys/devices/system/cpu/cpu[0-9]*; do
  [ -d "$d" ] || continue
  f=$d/cpufreq
  echo "${d##*/cpu} $(cat $f/scaling_governor 2>/dev/null || echo -) $(cat $f/scaling_cur_freq 2>/dev/null || echo -)\
 $(cat $f/cpuinfo_min_freq 2>/dev/null || echo -) $(cat $f/cpuinfo_max_freq 2>/dev/null || echo -)\
 $(cat $d/online 2>/dev/null || echo 1)"
done
echo @@thermal
for z in /sys/class/thermal/thermal_zone*; do
  [ -r "$z/temp" ] || continue
  echo "$(cat $z/type 2>/dev/null || echo ${z##*/}) $(cat $z/temp 2>/dev/null || echo -)"
done
echo @@meminfo; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo 2>/dev/null
echo @@loadavg; cat /proc/loadavg 2>/dev/null
echo @@end
"""

ABI_OF_MACHINE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64-v8a", "arm64": "arm64-v8a",
                  "armv7l": "armeabi-v7a", "armv8l": "armeabi-v7a"}

# Arm's MIDR part numbers (implementer 0x41): phones report these instead of a model name.
ARM_PARTS = {0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55", 0xD07: "Cortex-A57",
             0xD08: "Cortex-A72", 0xD09: "Cortex-A73", 0xD0A: "Cortex-A75", 0xD0B: "Cortex-A76",
             0xD0C: "Neoverse-N1", 0xD0D: "Cortex-A77", 0xD41: "Cortex-A78", 0xD44: "Cortex-X1",
             0xD46: "Cortex-A510", 0xD47: "Cortex-A710", 0xD48: "Cortex-X2", 0xD4D: "Cortex-A715",
             0xD4E: "Cortex-X3", 0xD80: "Cortex-A520", 0xD81: "Cortex-A720", 0xD82: "Cortex-X4",
             0xD87: "Cortex-A725", 0xD85: "Cortex-X925"}


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.rstrip("\r")
        if line.startswith("@@"):
            current = line[2:].strip()
            out.setdefault(current, [])
        elif current is not None and line.strip():
            out[current].append(line.strip())
    return out


def _int(s: str) -> int | None:
    try:
        return int(s)
    except ValueError:
        return None


def _cpu_name(lines: list[str]) -> tuple[str | None, dict[int, str]]:
    """The CPU model (x86 "model name", or Arm core names grouped like "2x Cortex-X1 + 6x Cortex-A55")."""
    per_core: dict[int, str] = {}
    model = hardware = None
    proc = None
    for line in lines:
        key, _, val = (p.strip() for p in line.partition(":"))
        if key == "processor":
            proc = _int(val)
        elif key == "model name" and proc is not None:
            per_core[proc] = val
        elif key == "CPU part" and proc is not None:
            part = _int(val) if not val.startswith("0x") else int(val, 16)
            per_core.setdefault(proc, ARM_PARTS.get(part or -1, f"arm part {val}"))
        elif key == "Hardware":
            hardware = val
        elif key == "Model":
            model = val
    if per_core:
        counts: dict[str, int] = {}
        for name in per_core.values():
            counts[name] = counts.get(name, 0) + 1
        name = " + ".join(f"{n}x {c}" if len(counts) > 1 else c for c, n in counts.items())
    else:
        name = hardware or model
    return name, per_core


# The instruction-set features that decide which kernels XNNPACK runs (and so which recipe is fastest): int8 is no
# faster than fp32 without VNNI/dot-product instructions, fp16 needs native half arithmetic.
CPU_FEATURES = {  # /proc/cpuinfo flag -> how a report names it
    "avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX512-BF16", "avx512_fp16": "AVX512-FP16", "amx_int8": "AMX-INT8",
    "asimddp": "dotprod", "i8mm": "i8mm", "fphp": "fp16", "bf16": "bf16", "sve": "SVE", "sve2": "SVE2", "sme": "SME",
}


def cpu_features(flags_line: str) -> list[str]:
    """The CPU_FEATURES named in a /proc/cpuinfo `flags` (x86) or `Features` (Arm) line, in CPU_FEATURES' order."""
    have = set(flags_line.partition(":")[2].split())
    return [name for flag, name in CPU_FEATURES.items() if flag in have]


def host_cpu_features() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            line = next((x for x in f if x.startswith(("flags", "Features"))), "")
    except OSError:
        return []
    return cpu_features(line)


def cpu_label(info: dict) -> str | None:
    """"AMD EPYC (AVX2, FMA), 2 cores": a device's CPU as every table that shows its numbers names it."""
    cpu = info.get("cpu") if isinstance(info, dict) else None
    if not cpu:
        return None
    feats = info.get("cpu_features")
    cores = info.get("cores")
    text = cpu + (f" ({', '.join(feats)})" if isinstance(feats, list) and feats else "")
    return text + (f", {cores} cores" if isinstance(cores, int) else "")


def host_cpu_name() -> str | None:
    """This machine's CPU model, read as a device's is (/proc/cpuinfo; None where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return _cpu_name(f.read().splitlines())[0]
    except OSError:
        return None


def devinfo_text_here() -> str:
    """What DEVINFO_SCRIPT prints, read in this process on this machine (the local device): the same sections from
    the same files, without the ~20 processes the script starts (0.12 s a call here, twice a run)."""
    import glob
    import os

    def read(path: str) -> str | None:
        try:
            with open(path) as f:
                return f.read().strip()
        except (OSError, UnicodeDecodeError):
            return None

    def lines_of(path: str) -> list[str]:
        text = read(path)
        return text.splitlines() if text else []

    u = os.uname()
    out = ["@@uname", f"{u.sysname} {u.release} {u.machine}", "@@hostname", u.nodename, "@@os"]
    out += [ln for ln in lines_of("/etc/os-release") if ln.startswith("PRETTY_NAME=")][:1]
    cpuinfo = lines_of("/proc/cpuinfo")
    out += ["@@online", str(os.sysconf("SC_NPROCESSORS_ONLN")), "@@cpuinfo"]
    out += [ln for ln in cpuinfo if re.match(r"^(processor|model name|Hardware|CPU implementer|CPU part|Model)\s*:", ln)]
    out += ["@@cpuflags"] + [ln for ln in cpuinfo if re.match(r"^(flags|Features)\s*:", ln)][:1]
    out.append("@@cpufreq")
    for d in sorted(glob.glob("/sys/devices/system/cpu/cpu[0-9]*")):
        if not os.path.isdir(d):
            continue
        f = f"{d}/cpufreq"
        vals = [read(f"{f}/{n}") or "-" for n in ("scaling_governor", "scaling_cur_freq", "cpuinfo_min_freq",
                                                    "cpuinfo_max_freq")]
        out.append(" ".join([d.rsplit("/cpu", 1)[1], *vals, read(f"{d}/online") or "1"]))
    out.append("@@thermal")
    for z in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        temp = read(f"{z}/temp")
        if temp is not None:
            out.append(f"{read(f'{z}/type') or z.rsplit('/', 1)[1]} {temp}")
    out += ["@@meminfo"] + [ln for ln in lines_of("/proc/meminfo") if ln.startswith(("MemTotal:", "MemAvailable:"))]
    out += ["@@loadavg"] + lines_of("/proc/loadavg")[:1] + ["@@end"]
    return "\n".join(out) + "\n"


def parse_devinfo(text: str) -> dict[str, Any]:
    """Turn DEVINFO_SCRIPT's output into the device snapshot stored with every run."""
    s = _sections(text)
    info: dict[str, Any] = {}
    uname = (s.get("uname") or [""])[0].split()
    if uname:
        info["kernel"] = " ".join(uname[:2])
        info["machine"] = uname[-1]
        info["abi"] = ABI_OF_MACHINE.get(uname[-1], uname[-1])
    if s.get("hostname"):
        info["hostname"] = s["hostname"][0]
    if s.get("os"):
        m = re.match(r'PRETTY_NAME="?(.*?)"?$', s["os"][0])
        info["os"] = m.group(1) if m else s["os"][0]
    cpu, per_core = _cpu_name(s.get("cpuinfo", []))
    info["cpu"] = cpu
    if s.get("cpuflags"):
        info["cpu_features"] = cpu_features(s["cpuflags"][0])
    info["cpu_per_core"] = {str(k): v for k, v in sorted(per_core.items())}
    governors, cur, mn, mx, offline = {}, {}, {}, {}, []
    for line in s.get("cpufreq", []):
        parts = line.split()
        if len(parts) < 6:
            continue
        core, gov, f_cur, f_min, f_max, online = parts[:6]
        if gov != "-":
            governors[core] = gov
        for table, val in ((cur, f_cur), (mn, f_min), (mx, f_max)):
            if _int(val) is not None:
                table[core] = int(val)
        if online == "0":
            offline.append(int(core))
    online = _int((s.get("online") or ["0"])[0])
    info["cores"] = online or len(s.get("cpufreq", [])) or len(per_core) or None
    info["cores_offline"] = sorted(offline)
    uniq = set(governors.values())
    info["governor"] = uniq.pop() if len(uniq) == 1 else (governors or None)
    info["freq_khz"] = cur
    info["freq_min_khz"] = mn
    info["freq_max_khz"] = mx
    temps: dict[str, float] = {}
    for line in s.get("thermal", []):
        name, _, val = line.rpartition(" ")
        v = _int(val)
        if v is None or not name:
            continue
        key, i = name, 1
        while key in temps:
            i += 1
            key = f"{name}#{i}"
        temps[key] = v / 1000.0 if abs(v) >= 1000 else float(v)  # most kernels report millidegrees
    info["temperatures_c"] = temps
    for line in s.get("meminfo", []):
        key, _, val = line.partition(":")
        num = _int(val.split()[0]) if val.split() else None
        info["mem_total_kb" if key == "MemTotal" else "mem_available_kb"] = num
    if s.get("loadavg"):
        info["loadavg"] = [float(x) for x in s["loadavg"][0].split()[:3]]
    info["devinfo_complete"] = "end" in s
    return info


# What changes a phone's speed during a run, read as the shell user: per-policy frequency caps and clocks,
# time_in_state, thermal zones, battery and screen. A file the shell user may not read (SELinux, mode bits) prints
# "?" and is recorded as unreadable; the snippet never fails. (Not `r()`: mksh, Android's sh, aliases r to fc -e -.)
STATE_SCRIPT = r"""
rd() { v=$(cat "$1" 2>/dev/null) && [ -n "$v" ] && echo "$v" || echo "?"; }
for p in /sys/devices/system/cpu/cpufreq/policy*; do
  [ -d "$p" ] || continue
  echo "@@policy ${p##*/}"
  for f in related_cpus cpuinfo_max_freq scaling_max_freq scaling_cur_freq scaling_governor; do echo "$f $(rd $p/$f)"; done
  echo "@@tis ${p##*/}"; cat $p/stats/time_in_state 2>/dev/null || echo "?"
done
echo @@zones
for z in /sys/class/thermal/thermal_zone*; do
  [ -d "$z" ] || continue
  echo "${z##*/} $(rd $z/temp) $(rd $z/type)"
done
if command -v dumpsys >/dev/null 2>&1; then
  echo @@battery; dumpsys battery 2>/dev/null
  echo @@power; dumpsys power 2>/dev/null | grep -E 'mWakefulness=|Display Power: state='
fi
echo @@end
"""

LIGHT_STATE_SCRIPT = r"""
for p in /sys/devices/system/cpu/cpufreq/policy*; do
  [ -d "$p" ] || continue
  echo "${p##*/} $(cat $p/scaling_max_freq 2>/dev/null || echo ?) $(cat $p/scaling_cur_freq 2>/dev/null || echo ?)"
done
"""


def _cpus(text: str) -> list[int]:
    out = []
    for part in text.replace(",", " ").split():
        lo, _, hi = part.partition("-")
        if lo.isdigit():
            out += list(range(int(lo), int(hi) + 1)) if hi.isdigit() else [int(lo)]
    return out


def parse_state(text: str) -> dict[str, Any]:
    """STATE_SCRIPT's output -> {"policies": {name: {cpus, max_khz, cap_khz, cur_khz, governor, time_in_state}},
    "thermal_c": {type: C}, "battery": {temp_c, charging, level}, "screen": "on"|"off"|None,
    "unreadable": [paths], "complete": bool}."""
    policies: dict[str, dict[str, Any]] = {}
    thermal: dict[str, float] = {}
    unreadable: list[str] = []
    battery: dict[str, Any] = {}
    screen = None
    section, name = None, None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("@@"):
            section, _, name = line[2:].partition(" ")
            if section == "policy":
                policies[name] = {"time_in_state": {}}
            continue
        if not line:
            continue
        if section == "policy":
            key, _, val = line.partition(" ")
            field = {"related_cpus": "cpus", "cpuinfo_max_freq": "max_khz", "scaling_max_freq": "cap_khz",
                     "scaling_cur_freq": "cur_khz", "scaling_governor": "governor"}.get(key)
            if field is None:
                continue
            if val == "?":
                unreadable.append(f"cpufreq/{name}/{key}")
                policies[name][field] = None
            elif field == "cpus":
                policies[name][field] = _cpus(val)
            elif field == "governor":
                policies[name][field] = val
            else:
                policies[name][field] = _int(val)
        elif section == "tis":
            if line == "?":
                unreadable.append(f"cpufreq/{name}/stats/time_in_state")
                policies[name]["time_in_state"] = None
            elif policies[name].get("time_in_state") is not None:
                parts = line.split()
                if len(parts) == 2 and all(p.isdigit() for p in parts):
                    policies[name]["time_in_state"][parts[0]] = int(parts[1])
        elif section == "zones":
            zone, _, rest = line.partition(" ")
            temp, _, kind = rest.partition(" ")
            kind = kind if kind and kind != "?" else zone
            v = _int(temp)
            if v is None:
                unreadable.append(f"thermal/{zone}/temp ({kind})")
                continue
            key, i = kind, 1
            while key in thermal:
                i += 1
                key = f"{kind}#{i}"
            thermal[key] = v / 1000.0 if abs(v) >= 1000 else float(v)
        elif section == "battery":
            key, _, val = (p.strip() for p in line.partition(":"))
            if key == "temperature" and _int(val) is not None:
                battery["temp_c"] = int(val) / 10.0
            elif key == "level" and _int(val) is not None:
                battery["level"] = int(val)
            elif key in ("AC powered", "USB powered", "Wireless powered") and val == "true":
                battery["charging"] = True
            elif key == "status" and _int(val) is not None:
                battery["status"] = {2: "charging", 3: "discharging", 4: "not charging", 5: "full"}.get(int(val),
                                                                                                       val)
        elif section == "power":
            if "mWakefulness=" in line:
                screen = "on" if line.split("=", 1)[1].strip() == "Awake" else "off"
            elif "Display Power: state=" in line and screen is None:
                screen = "on" if line.split("=", 1)[1].strip() == "ON" else "off"
    if battery:
        battery.setdefault("charging", False)
    return {"policies": policies, "thermal_c": thermal, "battery": battery or None, "screen": screen,
            "unreadable": unreadable, "complete": section == "end"}


def parse_light_state(text: str) -> dict[str, dict[str, int | None]]:
    """LIGHT_STATE_SCRIPT's output -> {policy: {"cap_khz", "cur_khz"}}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[0]] = {"cap_khz": _int(parts[1]), "cur_khz": _int(parts[2])}
    return out
