#!/usr/bin/env bash
# Installs each peer server into its own venv under bench/.venvs/ (git-ignored),
# from PyPI, with the same numpy / scikit-learn / joblib as kaci's .venv so every
# server loads the very same pickled model. Idempotent: a venv that finished
# installing (marker file) is left alone.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENVS="$ROOT/bench/.venvs"
MAIN_PY="$ROOT/.venv/bin/python"
mkdir -p "$VENVS"

pin() { "$MAIN_PY" -c "import importlib.metadata as m; print('$1==' + m.version('$1'))"; }
COMMON=("$(pin numpy)" "$(pin scikit-learn)" "$(pin joblib)")

make_venv() {
  local name="$1"; shift
  local dir="$VENVS/$name"
  if [[ -f "$dir/.installed" ]]; then return 0; fi
  echo "== bench: installing $name into $dir: $*" >&2
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install -q --upgrade pip
  "$dir/bin/pip" install -q "$@" "${COMMON[@]}"
  touch "$dir/.installed"
}

make_venv azureml "azureml-inference-server-http==1.5.1"
# MLServer's inference workers die at start with the uvloop pip picks by default.
make_venv mlserver "mlserver==1.7.1" "mlserver-sklearn==1.7.1" "uvloop==0.21.0"
make_venv kserve "kserve==0.21.0"
