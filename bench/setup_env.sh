#!/usr/bin/env bash
# Benchmark environment: .venv-bench with torch, the package (editable) and lightly 1.6.0.
# lightly is a benchmark-only comparison target: it is never a dependency of simclr_nb.
# Idempotent: a finished set-up leaves .venv-bench/.bench-installed and is skipped the next time.
# Usage (from the repository root):  bash bench/setup_env.sh      (VENV_BENCH=... to put it elsewhere)
set -eo pipefail
cd "$(dirname "$0")/.."
VENV_BENCH=${VENV_BENCH:-.venv-bench}
STAMP="$VENV_BENCH/.bench-installed"
TORCH_PIN=${TORCH_PIN:-torch==2.14.1}
TORCHVISION_PIN=${TORCHVISION_PIN:-torchvision==0.29.1}
LIGHTLY_PIN=${LIGHTLY_PIN:-lightly==1.6.0}
WANT="$TORCH_PIN $TORCHVISION_PIN $LIGHTLY_PIN $(sha1sum pyproject.toml | cut -c1-12)"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# pip here prints one harmless warning per package about missing local indexes: hide only those lines
quiet() { grep -v "^WARNING: Location 'file:" || true; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "bench env: $VENV_BENCH already set up ($WANT)"; exit 0
fi
PY=$VENV_BENCH/bin/python
test -x "$PY" || python3.11 -m venv "$VENV_BENCH" 2>/dev/null || python3 -m venv "$VENV_BENCH"
echo "bench env: installing $TORCH_PIN $TORCHVISION_PIN (a few minutes the first time)"
"$PY" -m pip install -q --upgrade pip 2>&1 | quiet
"$PY" -m pip install -q "$TORCH_PIN" "$TORCHVISION_PIN" 2>&1 | quiet
echo "bench env: installing simclr_nb (editable) and $LIGHTLY_PIN"
# the torch pins ride along so that no dependency can move torch away from the version measured
"$PY" -m pip install -q -e . "$LIGHTLY_PIN" "$TORCH_PIN" "$TORCHVISION_PIN" 2>&1 | quiet
"$PY" - <<'PYEOF'
import torch, torchvision, lightly, simclr_nb
print(f"bench env: torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"lightly {lightly.__version__}, simclr_nb {simclr_nb.__version__}")
PYEOF
echo "$WANT" > "$STAMP"
