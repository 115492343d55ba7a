# Sourced by scripts/demo and scripts/test: make .venv, install the project, build Fabric.
# Everything it needs comes from the package registries; nothing is installed by hand.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null; then echo "setup: python3 (3.11+) is required" >&2; exit 2; fi
if ! command -v go >/dev/null; then echo "setup: Go (1.24+) is required to build Fabric" >&2; exit 2; fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing the project and its dev tools into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  rm -f .venv/.installed-* && touch "$stamp"
fi
echo "==> Fabric binaries (pinned build, cached in ~/.cache/dtoken)"
.venv/bin/python -m consortium.binaries
export PATH="$ROOT/.venv/bin:$PATH"
