"""Test-wide settings: fast mode, and a cache folder of the tests' own.

The tests (and the notebooks nbval executes, whose kernels inherit this
environment) must never overwrite a learner's full-size checkpoints in
their home cache with fast-mode ones.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent

os.environ.setdefault("COURSE_FAST", "1")
os.environ.setdefault("COURSE_CACHE_DIR", str(ROOT / "build" / "test-cache"))
