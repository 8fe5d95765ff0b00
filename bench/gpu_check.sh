#!/usr/bin/env bash
# Issue 16's GPU check in one call (at most 8 minutes on one H100/H200), Keras on JAX.
#
# Here first: bench/gpu_check_prepare.sh (fills .carry/: Keras wheels, MNIST, 2,100 flowers
# photos at 224 px, the MobileNetV2 0.5 weights). On the device machine, repository root:
#   run(command="bench/gpu_check.sh", carry=[".carry"], timeout_s=540)
# It writes to $OUT (or the folder given as $1): summary.json (every figure, one file),
# augment.json (bench.augment_cost), env.json, log.txt. Figures:
#   - images/s with and without augmentation, float32 and mixed_float16 (mnist fast/best, flowers)
#   - MNIST fast and best trained by their recipes: test accuracy, training wall time
#     (best is asked to stop at BEST_DEADLINE_S and records the epochs it finished)
#   - flowers: one head epoch and two fine-tuning epochs of MobileNetV2 0.5 at 224 px on 1,760 photos
# Each step has its own time limit, and a failed step is recorded, not fatal.
# GPU_CHECK_QUICK=1: tiny sizes and 5x the time limits, for checking the script end to end on a CPU.
set -uo pipefail
OUT_DIR=${1:-${OUT:-gpu_check_out}}
CARRY=${GPU_CHECK_CARRY:-.carry}
PYTHON=${PYTHON:-python3}
QUICK=${GPU_CHECK_QUICK:-0}
RUNS=${GPU_CHECK_RUNS:-/tmp/gpu_check_runs}
BEST_DEADLINE_S=${BEST_DEADLINE_S:-120}
SCALE=${GPU_CHECK_TIME_SCALE:-$([ "$QUICK" = 1 ] && echo 5 || echo 1)}  # multiplies every step's time limit
limit() { echo $(( $1 * SCALE )); }
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
export CNN_STUDIO_DATA=$PWD/$CARRY/data CNN_STUDIO_RUNS=$RUNS
mkdir -p "$OUT_DIR" && rm -rf "$RUNS" && mkdir -p "$RUNS"
exec > >(tee "$OUT_DIR/log.txt") 2>&1
start=$(date +%s)
step() { echo "== $1 ($(( $(date +%s) - start )) s)"; }

if ! "$PYTHON" -c "import keras" 2>/dev/null; then
  step "installing the carried Keras wheels"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$CARRY"/wheels/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

if [ "$QUICK" = 1 ]; then
  BENCH=(--only "mnist fast" --policies float32 --steps 2 --rounds 1)
  MNIST=(--limit 600 --epochs 1)
  FLOWERS=(--limit-per-class 12 --min-per-class 10 --image-size 96 --batch-size 8)
else
  BENCH=(--policies float32,mixed_float16 --steps 20 --rounds 3)
  MNIST=()
  FLOWERS=(--val-frac 0.08 --test-frac 0.08)
fi

step "environment"
"$PYTHON" - "$OUT_DIR/env.json" <<'PY'
import json, subprocess, sys
import jax, keras
gpus = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                      capture_output=True, text=True).stdout.strip() if __import__("shutil").which("nvidia-smi") else ""
env = {"keras": keras.__version__, "backend": keras.backend.backend(), "jax": jax.__version__,
       "devices": [str(d) for d in jax.devices()], "nvidia_smi": gpus, "python": sys.version.split()[0]}
print(env)
json.dump(env, open(sys.argv[1], "w"), indent=1)
PY

step "augmentation cost (images/s with and without, float32 and mixed_float16)"
timeout "$(limit 200)" "$PYTHON" -m bench.augment_cost "${BENCH[@]}" \
  --json "$OUT_DIR/augment.json" || echo "augment_cost failed ($?)"

step "mnist fast (its recipe)"
timeout "$(limit 120)" "$PYTHON" -m core.train mnist --arch fast --out "$RUNS/fast" "${MNIST[@]}" || echo "fast failed ($?)"

step "mnist best (its recipe; asked to stop after ${BEST_DEADLINE_S} s)"
( sleep "$BEST_DEADLINE_S"; mkdir -p "$RUNS/best"; touch "$RUNS/best/STOP" ) & watchdog=$!
timeout "$(limit $((BEST_DEADLINE_S + 60)))" "$PYTHON" -m core.train mnist --arch best --out "$RUNS/best" "${MNIST[@]}" \
  || echo "best failed ($?)"
kill "$watchdog" 2>/dev/null

step "flowers: MobileNetV2 0.5 at 224 px, 1 head + 2 fine-tuning epochs"
timeout "$(limit 150)" "$PYTHON" -m core.train transfer --data flowers --backbone mobilenet_v2_0.5 --epochs-head 1 \
  --epochs-fine 2 --fine-tune-layers 40 --out "$RUNS/flowers" "${FLOWERS[@]}" || echo "flowers failed ($?)"

step "summary"
"$PYTHON" - "$RUNS" "$OUT_DIR" <<'PY'
import json, sys
from pathlib import Path

runs, out = Path(sys.argv[1]), Path(sys.argv[2])

def read(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None

def epochs(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if line.strip()] if (run / "metrics.jsonl").is_file() else []
    return [{"phase": r.get("phase"), "epoch": r["epoch"], "seconds": round(r["epoch_time"], 2),
             "val_accuracy": r.get("val_accuracy")} for r in rows if r.get("type") == "epoch"]

summary = {"environment": read(out / "env.json"), "augment": read(out / "augment.json"), "runs": {}}
for name in ("fast", "best", "flowers"):
    card, status = read(runs / name / "card.json"), read(runs / name / "status.json") or {}
    entry = {"state": status.get("state"), "error": status.get("error"), "device": status.get("device"),
             "epochs": epochs(runs / name)}
    if card:
        data = card.get("data", {})
        entry |= {"test_accuracy": card["metrics"]["test_accuracy"], "val_accuracy": card["metrics"]["val_accuracy"],
                  "training": {k: v for k, v in card["training"].items() if k != "hardware"},
                  "stopped": bool(card.get("stopped")),
                  "train_images": data.get("train_images") or data.get("images", {}).get("train")}
        # Whole epochs after each phase's first (which holds the compile); a stopped run's last is partial.
        whole = entry["epochs"][:-1] if entry["stopped"] else entry["epochs"]
        steady = [e["seconds"] for i, e in enumerate(whole) if i and whole[i - 1]["phase"] == e["phase"]]
        if steady and entry["train_images"]:
            entry["steady_epoch_s"] = round(sum(steady) / len(steady), 2)
            entry["images_per_s"] = round(entry["train_images"] / entry["steady_epoch_s"], 1)
    summary["runs"][name] = entry
(out / "summary.json").write_text(json.dumps(summary, indent=1))
for name, entry in summary["runs"].items():
    print(name, {k: entry.get(k) for k in ("state", "test_accuracy", "steady_epoch_s", "images_per_s")},
          [e["seconds"] for e in entry["epochs"]])
PY
echo "total $(( $(date +%s) - start )) s"
