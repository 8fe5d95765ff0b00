"""``python -m core.export RUN_OR_MODEL --format keras|savedmodel|tflite|onnx --out PATH``.

See core.models.export.
"""
import sys

from core import cli

if __name__ == "__main__":
    from core.models.export import main

    sys.exit(cli.run(main))
