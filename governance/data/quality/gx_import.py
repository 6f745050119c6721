"""The one way privgov imports Great Expectations.

Why a module: importing GX also imports PySpark's Spark Connect client when
PySpark is installed (``great_expectations.compatibility.pyspark``). PySpark 4
then checks its Connect dependencies, and in a process whose ``__main__`` has
no file (``python -c``, a pytest-xdist worker, some schedulers' task runners)
it calls ``sys.exit(0)`` when they are missing - a validation that silently
ends the process with success. The ``spark`` extra installs ``pyspark[connect]``
so the check passes; this module also turns PySpark's pandas-3 FutureWarning
(nothing a user can act on) off, and keeps GX analytics off.
"""
from __future__ import annotations

import os
import warnings
from types import ModuleType

from governance.errors import InputError


def import_gx() -> ModuleType:
    """`great_expectations`, imported with analytics off and PySpark's pandas-3 warning silenced."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    try:
        import great_expectations as gx
    except SystemExit as exc:  # PySpark's Connect check, see the module docstring
        raise InputError("Great Expectations could not load PySpark's Spark Connect client (grpcio and friends "
                         "missing); expected them installed: pip install 'privgov[spark]' "
                         f"(PySpark exited with {exc.code!r})") from None
    return gx
