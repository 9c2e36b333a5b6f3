"""Every test run keeps its own Sigma rule cache, never the user's ~/.cache/socpipe: the workers,
CLIs and loaders a test starts (subprocesses included) inherit it, and it goes with the run."""

import atexit
import os
import shutil
import tempfile

if "SOCPIPE_RULE_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="socpipe-test-rule-cache-")
    os.environ["SOCPIPE_RULE_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
