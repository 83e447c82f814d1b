"""uvicorn entry point for the end-to-end figure.

``BENCH_APP=ours uvicorn benchmarks.serve:app`` (``ours``, ``official``, ``minimal``, ``floor``).
"""

from __future__ import annotations

import logging
import os

from . import apps

logging.disable(logging.WARNING)  # as in bench.py: no log I/O in the measured path
app = apps.BUILDERS[os.environ.get("BENCH_APP", "ours")](os.environ.get("BENCH_MODE", "dev"))
