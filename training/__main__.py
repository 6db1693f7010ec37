"""`python -m training {train,evaluate,export,default,compare,weights} ...` (see --help)."""

import sys

from training.cli import main

sys.exit(main())
