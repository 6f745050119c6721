"""One local Spark session for the Spark data tests (JVM start ~10 s: session scope)."""
from __future__ import annotations

import shutil
import warnings

import pytest


@pytest.fixture(scope="session")
def spark():
    if shutil.which("java") is None:  # not a skip: scripts/system-deps.sh installs openjdk-17-jre-headless
        pytest.fail("java not found: run scripts/system-deps.sh as root (Debian openjdk-17-jre-headless)")
    from governance.data.spark.frame import ensure_python_workers

    ensure_python_workers()
    warnings.filterwarnings("ignore", category=FutureWarning, module="pyspark")
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("privgov-tests")
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1")
               .config("spark.default.parallelism", "1").config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               # tiny frames: compiling whole-stage code and re-planning cost more than they save
               .config("spark.sql.codegen.wholeStage", "false").config("spark.sql.adaptive.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
