#!/usr/bin/env bash
# Fill .carry/ (git-ignored) with what bench/gpu_check.sh needs on a GPU machine that has
# JAX but no Keras, no TensorFlow and no internet; the device tool carries it (64 MiB in all).
#
# Usage (repository root, this machine): bench/gpu_check_prepare.sh
#   CNN_STUDIO_DATA (default ../shared/data): where mnist/, flowers/ and imagenet/ are read from
#   PER_CLASS (default 420): flowers photos per class, re-encoded at 224x224 (5 x 420 = 2,100;
#   with 8% validation and 8% test that leaves 1,760 to train on, the issue's 1,750-photo epoch)
# Then: run(command="bench/gpu_check.sh", carry=[".carry"]) and read $OUT/summary.json.
set -euo pipefail
CARRY=${GPU_CHECK_CARRY:-.carry}
DATA=${CNN_STUDIO_DATA:-$(cd .. && pwd)/shared/data}
PER_CLASS=${PER_CLASS:-420}
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3

rm -rf "$CARRY" && mkdir -p "$CARRY/wheels" "$CARRY/data/mnist" "$CARRY/data/imagenet"
# Keras and its two needs the GPU image lacks, for its Python 3.12 (the rest are there: KINDS.md).
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$CARRY/wheels" keras==3.15.1 namex==0.1.0 optree==0.20.0
cp "$DATA"/mnist/*.gz "$CARRY/data/mnist/"
cp "$DATA/imagenet/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5" "$CARRY/data/imagenet/"
"$PYTHON" - "$DATA/flowers" "$CARRY/data/flowers" "$PER_CLASS" <<'PY'
import sys
from pathlib import Path

from PIL import Image

source, target, per_class = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
for folder in sorted(p for p in source.iterdir() if p.is_dir()):
    (target / folder.name).mkdir(parents=True)
    for path in sorted(folder.glob("*.jpg"))[:per_class]:
        with Image.open(path) as img:  # the size the model takes: nothing left to resize there
            img.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR).save(
                target / folder.name / path.name, quality=80)
PY
du -sh "$CARRY"/*
total=$(du -sb "$CARRY" | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
echo "carry $((total / 1048576)) MiB + tracked tree $((tree / 1048576)) MiB (the limit is 64 MiB together)"
[ $((total + tree)) -lt $((62 * 1048576)) ] || { echo "error: too large to carry" >&2; exit 1; }
