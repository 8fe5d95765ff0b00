"""Parameter counts of keras.applications models built with weights=None, cached for the Theory page.

Run: .venv/bin/python -m bench.architecture_params   (writes assets/theory/architecture_params.json)
Building each model takes a few seconds on a CPU; the page reads the JSON instead.
tests/test_theory.py rebuilds the cheap ones and checks the JSON still matches.
"""
import time

import core  # noqa: E402

core.import_tensorflow()
import keras  # noqa: E402

from core.learn import theory  # noqa: E402
from core.models import cards


def main() -> None:
    params = {}
    for name in theory.KERAS_MODELS:
        start = time.perf_counter()
        params[name] = theory.keras_params(name)
        print(f"{name:12s} {params[name]:>12,d} params  ({time.perf_counter() - start:.1f} s to build)")
        keras.backend.clear_session()
    theory.ARCH_JSON.parent.mkdir(parents=True, exist_ok=True)
    cards.atomic_write_json(theory.ARCH_JSON, {"keras": keras.__version__, "weights": None, "params": params})
    print(f"wrote {theory.ARCH_JSON}")
    for row in theory.architecture_table(params):
        print(f"{row['name']:10s} {row['year']} top-5 {row['top5']:>6s} {row['params']:>12,d}"
              f"  ({row['counted model']})")


if __name__ == "__main__":
    main()
