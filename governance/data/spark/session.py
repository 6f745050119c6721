"""One quiet, local-only SparkSession for the `engine: spark` data stages.

Why these settings: the tests and a laptop run Spark as `local[2]` and must not
open anything beyond 127.0.0.1 (driver host and bind address pinned, the web UI
off). A real cluster is named by `spark.master` (pipeline `spark_master`, the
CLI's `--spark-master`, or ``PRIVGOV_SPARK_MASTER``); then the driver address
is left to Spark's own configuration (``SPARK_LOCAL_IP``/``spark-defaults``),
because executors on other machines must be able to reach it.

Python workers are started with this interpreter (``PYSPARK_PYTHON``), otherwise
they would run the system Python, which has neither pandas nor privgov.
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[2]"
MASTER_ENV = "PRIVGOV_SPARK_MASTER"
INSTALL_HINT = "pip install 'privgov[spark]'"
JAVA_HINT = "apt-get install openjdk-17-jre-headless (Java 17), or set JAVA_HOME"


def require_pyspark() -> None:
    """Fail with one actionable line (exit 2) when the `spark` extra is not installed."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise InputError(f"engine `spark` needs PySpark, which is not installed; run: {INSTALL_HINT}") from None


def resolve_master(master: str | None) -> str:
    """The explicit master, else ``PRIVGOV_SPARK_MASTER``, else `local[2]`."""
    return master or os.environ.get(MASTER_ENV) or DEFAULT_MASTER


def is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[")


def quiet_warnings() -> None:
    """PySpark warns about pandas 3 on every conversion; the warning says nothing a user can act on."""
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)


def spark_session(master: str | None = None, conf: dict[str, str] | None = None) -> "SparkSession":
    """Get (or reuse) the SparkSession; one JVM per process, started on first use (~10 s)."""
    require_pyspark()
    from pyspark.sql import SparkSession

    quiet_warnings()
    url = resolve_master(master)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings: dict[str, Any] = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.python.worker.reuse": "true",
        "spark.sql.ansi.enabled": "false",
        # Shuffle, spill and cached blocks on local disk are encrypted (AES-CTR, a key per
        # application held in memory); it also makes PySpark hand pandas/Arrow data to the
        # JVM over a socket instead of a plaintext temp file. No plaintext on disk.
        "spark.io.encryption.enabled": "true",
    }
    if is_local(url):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        settings.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
    log_conf = Path(__file__).with_name("log4j2.properties")
    settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{log_conf}"
    settings.update(conf or {})
    builder = SparkSession.builder.master(url).appName("privgov")
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # JAVA_GATEWAY_EXITED and friends: the JVM did not start
        name = type(exc).__name__
        if "JAVA" in str(exc).upper() or "gateway" in str(exc).lower():
            raise InputError(f"engine `spark`: the Java gateway did not start ({name}); {JAVA_HINT}") from None
        raise InputError(f"engine `spark`: cannot start Spark on master {url!r} ({name}); "
                         "expected local[N] or a reachable spark:// / yarn / k8s master") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark
