"""How the adb stand-in runs arm64 programs on an x86_64 machine without binfmt_misc: in each simple command
(split at ; & | && || newlines) the first word naming an aarch64 ELF file gets `qemu-aarch64 -cpu cortex-a76 -L
<root>` put before it. Never QEMU's default -cpu max: it advertises SME, XNNPACK then picks SME kernels and int8
programs give wrong outputs. A relative path is resolved against the last `cd DIR` in the command; words inside a
nested quoted `sh -c '...'` are not rewritten (a limit of the stand-in, not of a phone), nor commands that start
with qemu-aarch64 themselves."""

from __future__ import annotations

import struct
from pathlib import Path

QEMU = ["qemu-aarch64", "-cpu", "cortex-a76"]
_SEPARATORS = ";&|\n()"
EM_AARCH64 = 183


def _is_aarch64_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return len(head) == 20 and head[:4] == b"\x7fELF" and struct.unpack("<H", head[18:20])[0] == EM_AARCH64


def _words(cmd: str):
    """(start offset, unquoted text, separator-before) for each shell word; enough quoting for our rewrites."""
    i, n, new_segment = 0, len(cmd), True
    while i < n:
        c = cmd[i]
        if c in " \t":
            i += 1
            continue
        if c in _SEPARATORS:
            new_segment = True
            i += 1
            continue
        start, text = i, []
        while i < n and cmd[i] not in " \t" + _SEPARATORS:
            c = cmd[i]
            if c == "'":
                j = cmd.find("'", i + 1)
                j = n if j < 0 else j
                text.append(cmd[i + 1:j])
                i = j + 1
            elif c == '"':
                j = i + 1
                while j < n and cmd[j] != '"':
                    j += 2 if cmd[j] == "\\" else 1
                text.append(cmd[i + 1:j])
                i = j + 1
            elif c == "\\" and i + 1 < n:
                text.append(cmd[i + 1])
                i += 2
            else:
                text.append(c)
                i += 1
        yield start, "".join(text), new_segment
        new_segment = False


def rewrite_for_qemu(cmd: str, cwd: Path, qemu_root: Path | None, host_path=None) -> str:
    """Put qemu-aarch64 before the first aarch64 ELF word of each simple command not already started by qemu.
    qemu_root: qemu's -L (none when None); host_path: where a path of the command is on this machine (a chroot's
    paths differ from the host's), identity when None."""
    inserts, cur_dir = [], cwd
    first = None  # first word of the current simple command
    done = False
    for start, word, new_segment in _words(cmd):
        if new_segment:
            first, position = word, 0
            done = word.rsplit("/", 1)[-1] == QEMU[0]  # the caller already emulates this one
        else:
            position += 1
        if first == "cd" and position == 1:
            cur_dir = cur_dir / word
            continue
        if done or "/" not in word:
            continue
        if _is_aarch64_elf((host_path or (lambda p: p))(cur_dir / word)):
            inserts.append(start)
            done = True
    prefix = " ".join(QEMU + (["-L", str(qemu_root)] if qemu_root is not None else [])) + " "
    for start in reversed(inserts):
        cmd = cmd[:start] + prefix + cmd[start:]
    return cmd
