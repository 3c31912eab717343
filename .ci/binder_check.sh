#!/usr/bin/env bash
# Validate binder/ without Docker, as Binder would use it:
#   1. a fresh venv on the Python version binder/runtime.txt names;
#   2. `pip install -r binder/requirements.txt` from the repository root (what repo2docker runs), nothing else;
#   3. binder/postBuild, with a scratch HOME (its IPython startup file and Jupyter config land there);
#   4. the JupyterLab widgets extension enabled, torch the CPU build;
#   5. every notebook executed in smoke mode in a fresh kernel of that venv, the peak memory of each kernel's
#      process tree measured (PSS; must stay under Binder's 2 GB);
#   6. `jupyter-repo2docker --no-build` (a dry run: renders the Dockerfile, needs no Docker) on this repository.
# Usage: bash .ci/binder_check.sh [WORKDIR]   (default: a temporary folder, removed afterwards)
#   BINDER_PHASE=prepare bash .ci/binder_check.sh WORKDIR   steps 1-4 only (the venv, built while other checks run)
#   BINDER_PHASE=check bash .ci/binder_check.sh WORKDIR     steps 5-6 only, in the venv prepared there
set -euo pipefail
phase=${BINDER_PHASE:-all}
case "$phase" in all | prepare | check) ;; *) echo "BINDER_PHASE must be all, prepare or check, not $phase" >&2; exit 2 ;; esac
[ "$phase" = all ] || [ -n "${1:-}" ] || { echo "BINDER_PHASE=$phase needs a WORKDIR argument" >&2; exit 2; }
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${1:-$(mktemp -d -t binder-check-XXXXXX)}
[ -n "${1:-}" ] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"
started=$SECONDS
step() { echo "== binder check [$((SECONDS - started)) s]: $*"; }

version=$(sed -n 's/^python-\([0-9]*\.[0-9]*\).*/\1/p' binder/runtime.txt)
[ -n "$version" ] || { echo "binder/runtime.txt does not name a python-X.Y version" >&2; exit 1; }
python=$(command -v "python$version" || true)
[ -n "$python" ] || { echo "python$version (binder/runtime.txt) is not installed here" >&2; exit 1; }
venv=$WORK/venv/bin
export_env() {
  export HOME=$WORK/home PATH="$venv:$PATH" MPLBACKEND=Agg PYTHONWARNINGS=ignore
  unset IPYTHONDIR JUPYTER_CONFIG_DIR
}

if [ "$phase" != check ]; then
step "fresh venv on $("$python" --version)"
"$python" -m venv "$WORK/venv"

step "pip install -r binder/requirements.txt"
# PIP_RETRIES=0: an unreachable extra index (download.pytorch.org offline) fails at once instead of retrying
# for every package; pip then takes torch from the other indexes or local wheels, as it must.
PIP_RETRIES=0 "$venv/pip" install -q -r binder/requirements.txt 2> >(grep -v -e "^WARNING: Retrying" -e "Could not fetch URL" -e "NameResolutionError" -e "is ignored: it is neither a file nor a directory" >&2)

step "binder/postBuild"
export_env
mkdir -p "$HOME"
bash binder/postBuild
test -f "$HOME/.ipython/profile_default/startup/00-dltoolkit.py"
grep -q "01-quickstart.ipynb" "$HOME/.jupyter/jupyter_server_config.py"

step "extensions ready"
jupyter labextension list 2>&1 | tee "$WORK/labextensions.txt" | grep "@jupyter-widgets/jupyterlab-manager"
grep "@jupyter-widgets/jupyterlab-manager" "$WORK/labextensions.txt" | grep -q "enabled"
python -c 'import torch; assert torch.version.cuda is None, torch.version.cuda; print("torch", torch.__version__, "(CPU)")'
# IPython runs the profile's startup files as a kernel does: the extension must be loaded without %load_ext
python -m IPython --no-banner --colors=NoColor -c \
  'assert "dltoolkit" in get_ipython().extension_manager.loaded; print("dltoolkit extension loaded at start-up")'
fi
[ "$phase" != prepare ] || { step "prepared in $WORK"; exit 0; }

export_env
test -x "$venv/python" || { echo "no prepared venv in $WORK (run BINDER_PHASE=prepare first)" >&2; exit 1; }
step "notebooks in smoke mode, peak memory per kernel"
python -c "import nbclient, psutil"  # the executor's needs come with jupyterlab and ipython: nothing is added
python tests/binder/execute_notebooks.py notebooks/*.ipynb --limit-mb 2048 --report "$WORK/memory.json"

step "jupyter-repo2docker --no-build (dry run)"
python -m pip install -q jupyter-repo2docker
jupyter-repo2docker --no-build --user-id 1000 --user-name jovyan "$ROOT" > "$WORK/Dockerfile" 2> "$WORK/repo2docker.log" \
  || { cat "$WORK/repo2docker.log" >&2; exit 1; }
grep -q 'pip install --no-cache-dir -r "binder/requirements.txt"' "$WORK/Dockerfile"  # from the repo root
grep -q "RUN ./binder/postBuild" "$WORK/Dockerfile"
grep -q "python=$version" "$WORK/repo2docker.log" || { cat "$WORK/repo2docker.log" >&2; exit 1; }
echo "repo2docker: $(grep -c . "$WORK/Dockerfile")-line Dockerfile (python $version, pip -r binder/requirements.txt, postBuild); no Docker needed"
step "done"
