# Sourced by scripts/demo and scripts/test: make .venv, install the project's distributions,
# build Fabric.
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
# Every distribution of the repository (each folder has its own pyproject.toml; see the
# root pyproject.toml), installed editable; the root pyproject.toml's dev group, the tools.
DISTRIBUTIONS=(chaincode-client/wire chaincode-client/gateway chaincode-client/sdk
               chaincode/shim chaincode/server network)
# Reinstall when any pyproject.toml (the workspace's or a distribution's) changes.
stamp=".venv/.installed-$(cat pyproject.toml "${DISTRIBUTIONS[@]/%//pyproject.toml}" \
  | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing the project's distributions and its dev tools into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  # The one wheel of everything this repository used to build (a .venv made before the split)
  .venv/bin/python -m pip uninstall --quiet --yes deposit-token-network 2>/dev/null || true
  editable=()
  for dist in "${DISTRIBUTIONS[@]}"; do editable+=(-e "./$dist"); done
  .venv/bin/python -m pip install --quiet "${editable[@]}" --group dev
  rm -f .venv/.installed-* && touch "$stamp"
fi
echo "==> Fabric binaries (pinned build, cached in ~/.cache/dtoken)"
.venv/bin/python -m consortium.binaries
export PATH="$ROOT/.venv/bin:$PATH"
