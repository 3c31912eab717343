#!/usr/bin/env bash
# The dependency floors hold: a fresh venv with every dependency at the lower bound pyproject.toml declares
# (core and the tune, serve, export, track and explain extras), then a short run, an ONNX export, a short
# sweep on each engine (local and Ray), the canary tests of the private hooks, an ONNX export with string
# inputs, a run and a sweep tracked in MLflow (a local store and a server) and a run with its explanation.
# .ci/test.sh runs it after pytest with FLOORS_TORCH=2.13.0 (the torch floor itself would be a multi-GB
# CUDA build from PyPI here).
#   bash .ci/floors.sh            # venv in .venv-floors (kept for a rerun), work files in a temp folder
#   FLOORS_VENV=/tmp/v FLOORS_TORCH=2.13.0 bash .ci/floors.sh   # another venv; every floor but torch's
#   FLOORS_PHASE=install ... / FLOORS_PHASE=check ...   # only build the venv / only run the checks in it
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(realpath -m "${FLOORS_VENV:-.venv-floors}")
phase=${FLOORS_PHASE:-all}
case "$phase" in all | install | check) ;; *) echo "FLOORS_PHASE must be all, install or check, not $phase" >&2; exit 2 ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$phase" != check ]; then

# pip has no "lowest" resolution: pin each floor (the >= bound) in a constraints file instead.
python3 - "$work/floors.txt" <<'PY'
import re, sys, tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
pins = {}
for req in project["dependencies"] + sum((extras[x] for x in ("tune", "serve", "export", "track", "explain")), []):
    m = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$", req)
    name, spec = m.group(1), m.group(3)
    floor = re.search(r">=\s*([0-9][^,;\s]*)", spec)
    if not floor:
        sys.exit(f"no lower bound for {req!r}: every dependency needs one")
    pins[name.lower()] = floor.group(1)
open(sys.argv[1], "w").write("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
PY

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
# FLOORS_TORCH=2.13.0: test the other floors with a torch already on this machine's disk (where the CPU
# index is unreachable, PyPI would answer with a multi-GB CUDA build of the torch floor).
# torch's ONNX exporter needs an onnxscript (and onnx) that knows that torch version (one module per
# version), so their floors pair with torch's: with another torch they are left to the resolver.
if [ -n "${FLOORS_TORCH:-}" ]; then
  sed -i -e "s/^torch==.*/torch==$FLOORS_TORCH/" -e "/^onnxscript==/d" -e "/^onnx==/d" "$work/floors.txt"
fi
torch_floor=$(grep '^torch==' "$work/floors.txt")
echo "floors:"; sed 's/^/  /' "$work/floors.txt"
# the CPU build of the torch floor first, so that nothing pulls a CUDA build
if [ -n "${FLOORS_TORCH:-}" ]; then
  "$venv/bin/pip" install -q "$torch_floor"
else
  "$venv/bin/pip" install -q "$torch_floor" --extra-index-url https://download.pytorch.org/whl/cpu
fi
"$venv/bin/pip" install -q -c "$work/floors.txt" -e ".[tune,serve,export,track,explain]" pytest
if [ -n "${FLOORS_TORCH:-}" ]; then
  "$venv/bin/pip" install -q -c "$work/floors.txt" --upgrade "onnx<2" "onnxscript<1"
fi
"$venv/bin/pip" check
"$venv/bin/pip" list 2>/dev/null | grep -i -E '^(torch|pytorch-lightning|torchmetrics|ray|numpy|pandas|scikit-learn|optuna|onnx|fastapi|mlflow|tensorboard|captum) '
fi
[ "$phase" != install ] || { echo "floors venv ready: $venv"; exit 0; }
test -x "$venv/bin/dltoolkit" || { echo "no floors venv at $venv (run FLOORS_PHASE=install first)" >&2; exit 1; }

export PATH="$venv/bin:$PATH" MPLBACKEND=Agg PYTHONPATH="$PWD"
dltoolkit run wine --set train.epochs=2 --quiet --out "$work/run"
dltoolkit export "$work/run/model" --format onnx --out "$work/wine.onnx"
dltoolkit tune wine --samples 2 --set train.epochs=2 --set search.grace_period=1 --quiet --out "$work/sweep"
test -f "$work/sweep/best/weights.pt"
# the same on Ray Tune (the local engine above needs no Ray): the Ray floor's Tuner, RunConfig and checkpoints
dltoolkit tune wine --samples 2 --set train.epochs=2 --set search.grace_period=1 --engine ray --quiet \
  --out "$work/sweep-ray"
test -f "$work/sweep-ray/best/weights.pt"
python -m pytest -q -p no:cacheprovider tests/core/test_canaries.py
# categorical inputs in ONNX: onnx.compose and ai.onnx.ml.LabelEncoder at the onnx / onnxruntime floors
python -m pytest -q -p no:cacheprovider tests/deploy/test_deploy_export_inputs.py -k onnx_export_takes
# MLflow's floor: a run and a sweep logged to a local SQLite store and to a server; Captum's: a run that
# explains its model in its own report
python -m pytest -q -p no:cacheprovider tests/track/test_track_mlflow.py -k "a_run_logs or a_sweep_is"
python -m pytest -q -p no:cacheprovider tests/interpret/test_explain_cli.py -k a_run_asked_to_explain
echo "floors hold"
