"""``python -m triage ...``: the same commands as the ``triage`` console script."""

import sys

from triage.cli import main

sys.exit(main())
