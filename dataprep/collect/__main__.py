import sys

from dataprep.collect.cli import run

sys.exit(run())
