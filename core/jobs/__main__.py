"""``python -m core.jobs list|supervise``: the run queue from the command line."""
import sys

from core import cli
from core.jobs import main

sys.exit(cli.run(main))
