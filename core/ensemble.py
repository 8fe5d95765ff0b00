"""``python -m core.ensemble RUN... --out DIR``: average finished MNIST runs (see core.training.ensemble)."""
import sys

from core import cli

if __name__ == "__main__":
    from core.training.ensemble import main

    sys.exit(cli.run(main))
