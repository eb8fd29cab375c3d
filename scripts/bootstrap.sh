#!/usr/bin/env bash
# Bootstrap mimofm on a fresh Debian machine: system packages (as root), a .venv, torch (CPU) first,
# then the package with its test extras. Safe to re-run; `make` only calls it when pyproject changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

# Sionna RT on the CPU needs LLVM >= 19 (Debian 12's default LLVM 15 makes Dr.Jit abort); the HTML
# report's test needs chromium and its driver.
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  if ! compgen -G "/usr/lib/*-linux-gnu/libLLVM-19.so*" >/dev/null; then
    echo "[bootstrap] installing libllvm19 (Sionna RT on the CPU)"
    (apt-get install -y -qq libllvm19 >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq libllvm19 >/dev/null; }) \
      || echo "[bootstrap] warning: libllvm19 could not be installed; ray tracing will be unavailable"
  fi
  # the report page's test opens it in a real headless browser (Debian's chromium, driven by Selenium)
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "[bootstrap] installing chromium and chromium-driver (the HTML report's browser test)"
    (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq chromium chromium-driver >/dev/null; }) \
      || echo "[bootstrap] warning: chromium could not be installed; the browser test will be skipped"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[bootstrap] creating $VENV"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first: 2.13.0 has a CPU build on these machines' disk; a bare `torch` would pull a multi-GB CUDA build.
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  echo "[bootstrap] installing torch==2.13.0"
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
fi
echo "[bootstrap] installing mimofm[test]"
"$VENV/bin/python" -m pip install -q -e ".[test]"
touch "$VENV/.bootstrapped"
echo "[bootstrap] done: $("$VENV/bin/python" -c 'import torch, mimofm; print("torch", torch.__version__)')"
