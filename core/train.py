"""``python -m core.train TASK [options]``: one training run (see core.training.runner).

Stored job commands re-run exactly this entry, so it stays as the README shows it.
"""
import sys

if __name__ == "__main__":
    from core.training.runner import main

    sys.exit(main())
