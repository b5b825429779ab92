#!/usr/bin/env bash
# The GPU benchmark table on a bare GPU machine: JAX with CUDA preinstalled, no network.
#
#   bash benchmarks/accelerator.sh [--quick] [OUT_DIR] [extra benchmarks/train_step.py flags]
#
# 1. Installs the Python packages the image lacks (benchmarks/wheels.txt) from the wheel
#    folder .whl/ into $SITE (default /tmp/genimg_site) and puts it on PYTHONPATH; the
#    preinstalled jax, flax, optax, numpy are used as they are. Make .whl/ beforehand, on a
#    machine with network: `bash benchmarks/wheels.sh` (about 10 MB, git-ignored).
# 2. Checks every import the benchmark makes (one line naming what is missing if not).
# 3. Runs every model in configs/ × batch 256, 1024 × every device count (1, 2, 4, …) × jit
#    and pmap, in bfloat16 (rows' % of peak against the measured bf16 matmul peak), within a
#    time budget so that it ends about 4 minutes in; rows that did not fit are listed as
#    skipped. Writes OUT_DIR/train_step_gpu.json and .md (default benchmarks/results/).
# 4. The runs axis: gan_seed, vae, dcgan at batch 64 with R = 1 and 16 runs in one program,
#    until about 5 minutes in. Writes OUT_DIR/runs_gpu.json and .md.
# 5. JAX against PyTorch (benchmarks/compare.py, float32, eager and torch.compile, with the
#    image's preinstalled torch): gan_seed at 64, dcgan at 256, vae at 256, sngan and wgan_gp
#    at 64, within what is left of 7 minutes (rows that do not fit are listed as skipped).
#    Writes OUT_DIR/compare_gpu.json and .md. No torch (or no CUDA): one line, and it goes on.
# --quick: a one-minute check of the same path (2 models, batch 64, short windows; one
# compare row). Extra flags go to train_step.py last, so they override these (e.g. --dtypes
# bfloat16,float32 --batch_sizes 64,256,1024 --time_budget_s 900).
set -euo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/genimg_site}
WHEELS=${WHEELS:-.whl}
QUICK=0
if [[ ${1:-} == --quick ]]; then QUICK=1; shift; fi
OUT_DIR=benchmarks/results
if [[ $# -gt 0 && ${1:-} != --* ]]; then OUT_DIR=$1; shift; fi
mkdir -p "$OUT_DIR"

# 1. Missing packages from the local wheels (no index, no dependency resolution: the list is
#    complete by construction, see benchmarks/wheels.txt).
if compgen -G "$WHEELS/*.whl" > /dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --disable-pip-version-check --target "$SITE" "$WHEELS"/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  echo "accelerator.sh: installed $(ls "$WHEELS"/*.whl | wc -l) wheels into $SITE"
else
  echo "accelerator.sh: no wheels in $WHEELS/ (make them with benchmarks/wheels.sh); using" \
       "what is installed"
fi

# 2. Every import the benchmark makes, before any device time is spent on rows.
"$PYTHON" - <<'EOF'
import importlib, os, sys
sys.path.insert(0, os.getcwd())
try:
  from benchmarks import train_step
  models = train_step.discover_models()
  import benchmarks.rows  # jax, flax, optax, genimg_jax.train.*
except ModuleNotFoundError as e:
  sys.exit(f"accelerator.sh: Python package {e.name!r} is missing: add it to "
           f"benchmarks/wheels.txt, run benchmarks/wheels.sh on a networked machine, retry")
import jax
print(f"accelerator.sh: jax {jax.__version__}, devices {jax.devices()}, models {models}")
EOF

# 3. The table. Budget: 255 s − setup so far − 25 s for the device probe and the last row.
BUDGET=$(( 230 - (SECONDS - START) ))
if [[ $QUICK == 1 ]]; then
  ARGS=(--models gan_seed,vae --batch_sizes 64 --windows 1 --min_window_s 0.1
        --max_timing_s 1 --steps_per_dispatch 5 --time_budget_s 120)
else
  ARGS=(--batch_sizes 256,1024 --windows 3 --min_window_s 0.2 --max_timing_s 2
        --steps_per_dispatch 20 --time_budget_s "$BUDGET")
fi
set +e
PYTHONUNBUFFERED=1 "$PYTHON" benchmarks/train_step.py --devices all --parallel jit,pmap \
  --dtypes bfloat16 "${ARGS[@]}" --out "$OUT_DIR/train_step_gpu.json" "$@"
STATUS=$?
echo "accelerator.sh: train_step.py exit $STATUS after $(( SECONDS - START )) s;" \
     "wrote $OUT_DIR/train_step_gpu.json and $OUT_DIR/train_step_gpu.md"

# 4. The runs axis: R = 1 and 16 runs in one program (gan_seed, vae, dcgan at batch 64).
RLIMIT=$(( 310 - (SECONDS - START) ))
if [[ $QUICK == 1 ]]; then
  RUNS=(--models vae --runs 2 --windows 1 --min_window_s 0.1 --max_timing_s 1)
  RLIMIT=60
else
  RUNS=(--models gan_seed,vae,dcgan --runs 16 --windows 3 --min_window_s 0.2 --max_timing_s 2
        --steps_per_dispatch 20 --time_budget_s $(( RLIMIT - 20 )))
fi
if (( RLIMIT > 20 )); then
  PYTHONUNBUFFERED=1 timeout "$RLIMIT" "$PYTHON" benchmarks/train_step.py --devices 1 \
    --dtypes float32 --batch_sizes 64 "${RUNS[@]}" --out "$OUT_DIR/runs_gpu.json" \
    || echo "accelerator.sh: the runs rows stopped early (exit $?)"
  echo "accelerator.sh: wrote $OUT_DIR/runs_gpu.json and $OUT_DIR/runs_gpu.md"
fi

# 5. JAX vs PyTorch. compare.py starts no row past its budget; a row still running 20 s
#    before the 7 minutes are up is stopped (the rows before it are already written).
if [[ $QUICK == 1 ]]; then
  CMP=(--rows gan_seed:64 --windows 1 --min_window_s 0.1 --time_budget_s 60)
  LIMIT=90
else
  LIMIT=$(( 420 - (SECONDS - START) ))
  CMP=(--rows gan_seed:64,dcgan:256,vae:256,sngan:64,wgan_gp:64 --windows 3
       --min_window_s 0.2 --time_budget_s $(( LIMIT - 45 )))
fi
if (( LIMIT > 30 )); then
  PYTHONUNBUFFERED=1 timeout "$LIMIT" "$PYTHON" benchmarks/compare.py --device cuda \
    --modes eager,compile "${CMP[@]}" --out "$OUT_DIR/compare_gpu.json"
  CSTATUS=$?
  case $CSTATUS in
    0) echo "accelerator.sh: wrote $OUT_DIR/compare_gpu.json and $OUT_DIR/compare_gpu.md" ;;
    2) echo "accelerator.sh: JAX vs PyTorch not measured (no torch, or no CUDA device for" \
            "it or for JAX: the line above)" ;;
    124) echo "accelerator.sh: compare.py stopped at the time limit; the rows it finished" \
              "are in $OUT_DIR/compare_gpu.json" ;;
    *) if [[ $STATUS == 0 ]]; then STATUS=$CSTATUS; fi ;;
  esac
  echo "accelerator.sh: compare.py exit $CSTATUS"
else
  echo "accelerator.sh: no time left for compare.py (JAX vs PyTorch)"
fi
set -e
echo "accelerator.sh: exit $STATUS after $(( SECONDS - START )) s"
exit $STATUS
