"""`python -m collectors ...` = `socpipe-agent ...` (see collectors.cli).

`socpipe agent run` on a SOC install re-executes itself into this, so the agent never carries the
modules of the other areas that the one `socpipe` CLI imports (measured: ~10 MB of resident memory).
"""

import sys

from collectors.cli import main

if __name__ == "__main__":
    sys.exit(main())
