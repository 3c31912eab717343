#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then lint, format check and pytest.
# README.md gives this as the test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then  # the browser tests drive Debian's Chromium (never a downloaded one)
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q torch==2.13.0 torchvision==0.28.0  # the CPU torch on this machine's disk and its torchvision; first, so nothing pulls CUDA
.venv/bin/pip install -q -e ".[test]"                # test pulls dltoolkit[all]: every extra
export PATH="$PWD/.venv/bin:$PATH" MPLBACKEND=Agg PYTHONWARNINGS=ignore

ruff check dltoolkit tests benchmarks notebooks
ruff format --check dltoolkit tests benchmarks notebooks
# tests/notebooks executes every notebook in smoke mode in this venv; the Binder check below executes them all
# again in smoke mode in a fresh venv built from binder/ (with their peak memory), so CI runs them once, there.
pytest -q -p no:cacheprovider --timeout=900 --durations=15 --ignore=tests/notebooks "$@"
# the dependency floors hold (a fresh venv at every lower bound but torch's, which would be a CUDA build):
# a run, an ONNX export, a sweep on each engine, the canary tests of the private hooks
FLOORS_VENV="$(mktemp -d -t floors-XXXXXX)/venv" FLOORS_TORCH=2.13.0 bash .ci/floors.sh
bash .ci/binder_check.sh   # binder/ validated without Docker: fresh venv, postBuild, notebooks < 2 GB, repo2docker --no-build
