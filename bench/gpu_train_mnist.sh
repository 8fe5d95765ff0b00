#!/usr/bin/env bash
# Train N `best` MNIST members in parallel on one GPU (JAX backend), then ensemble them.
#
# Usage (repository root, a machine with JAX + Keras 3.15.1, TensorFlow not needed):
#   KERAS_BACKEND=jax bench/gpu_train_mnist.sh OUT_DIR [MEMBERS=8] [EPOCHS=30]
# Environment knobs: PYTHON (default python3), DEADLINE_S (default 330: members still
# running then are asked to stop via their STOP file and finish with what they have),
# EXTRA_ARGS (more core.train flags, e.g. "--limit 600" for a smoke test),
# KEEP_CHECKPOINTS=1 keeps checkpoints/ (removed by default to keep OUT_DIR small),
# CNN_STUDIO_DATA (default: ./shared/data or ../shared/data, whichever holds mnist/).
#
# Each member: `python -m core.train mnist --arch best --seed S --epochs EPOCHS`, its own
# run folder OUT_DIR/best_sS, a 1/N share of GPU memory. The ensemble (core.training.ensemble)
# chooses members on the shared validation split only and is kept only if it beats
# the best single member there; OUT_DIR/ensemble/selection.json records the choice.
# Estimate on one H200: ~40 s start-up and XLA compile, ~5 s per epoch per member with
# 8 sharing the GPU, so 30 epochs ~ 3-4 min, plus ~30 s for the ensemble: under 7 min.
set -euo pipefail

OUT=${1:?usage: KERAS_BACKEND=jax bench/gpu_train_mnist.sh OUT_DIR [MEMBERS] [EPOCHS]}
MEMBERS=${2:-8}
EPOCHS=${3:-30}
PYTHON=${PYTHON:-python3}
DEADLINE_S=${DEADLINE_S:-330}
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3

if [ -z "${CNN_STUDIO_DATA:-}" ]; then
  for candidate in "$PWD/shared/data" "$PWD/../shared/data" "$PWD/data"; do
    if [ -d "$candidate/mnist" ]; then export CNN_STUDIO_DATA=$candidate; break; fi
  done
fi
if [ ! -d "${CNN_STUDIO_DATA:-/nonexistent}/mnist" ]; then
  echo "error: no MNIST IDX files found; set CNN_STUDIO_DATA to the folder holding mnist/" >&2
  exit 2
fi

mkdir -p "$OUT"
# Leave headroom: N processes each preallocate this fraction of GPU memory.
export XLA_PYTHON_CLIENT_MEM_FRACTION=$("$PYTHON" -c "print(round(0.9 / $MEMBERS, 3))")
echo "backend=$KERAS_BACKEND members=$MEMBERS epochs=$EPOCHS mem_fraction=$XLA_PYTHON_CLIENT_MEM_FRACTION"
echo "data=$CNN_STUDIO_DATA out=$OUT"
"$PYTHON" -c "import jax; print('devices:', jax.devices())" || true

start=$(date +%s)
pids=()
for seed in $(seq 1 "$MEMBERS"); do
  run="$OUT/best_s$seed"
  "$PYTHON" -m core.train mnist --arch best --seed "$seed" --epochs "$EPOCHS" \
    --name "mnist_best_s$seed" --out "$run" ${EXTRA_ARGS:-} > "$OUT/best_s$seed.log" 2>&1 &
  pids+=($!)
done

# Safety net: past the deadline every member is asked to stop after its current batch.
( sleep "$DEADLINE_S"; for seed in $(seq 1 "$MEMBERS"); do touch "$OUT/best_s$seed/STOP"; done ) &
watchdog=$!

failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
kill "$watchdog" 2>/dev/null || true
echo "members done in $(( $(date +%s) - start )) s ($failed failed)"
for seed in $(seq 1 "$MEMBERS"); do tail -n 1 "$OUT/best_s$seed.log"; done

"$PYTHON" -m core.ensemble --runs-from "$OUT" --out "$OUT/ensemble" --name mnist_ensemble \
  | tee "$OUT/ensemble.log"
if [ "${KEEP_CHECKPOINTS:-0}" != 1 ]; then rm -rf "$OUT"/*/checkpoints; fi
echo "total $(( $(date +%s) - start )) s"

best=$("$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['best_single'])" \
  "$OUT/ensemble/selection.json")
kept=$("$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['ensemble_kept'])" \
  "$OUT/ensemble/selection.json")
echo "ship (on the dev machine, after copying OUT_DIR back):"
echo "  .venv/bin/python -m bench.ship $best mnist_best"
if [ "$kept" = True ]; then
  echo "  .venv/bin/python -m bench.ship $OUT/ensemble mnist_ensemble"
else
  echo "  (ensemble did not beat the best single member on validation: do not ship it)"
fi
