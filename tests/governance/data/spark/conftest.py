"""One SparkSession (one JVM, ~10 s to start) for every Spark test.

No skip when PySpark or Java is missing: `make test` must run the Spark parity
test, so a machine without them fails here with the command that fixes it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.fail("PySpark is missing: pip install -c constraints.txt -e '.[spark]'", pytrace=False)
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        pytest.fail("java not found: run scripts/system-deps.sh as root (Debian openjdk-17-jre-headless)",
                    pytrace=False)
    from governance.data.spark import session as spark_module
    from governance.data.spark import spark_session

    # a local dir of our own, so tests can scan Spark's shuffle, spill and temp files for plaintext;
    # one shuffle partition and parallelism 1 keep small test frames fast (tests repartition explicitly);
    # tiny frames: compiling whole-stage code and re-planning cost more than they save
    local = tmp_path_factory.mktemp("spark-local")
    # a test JVM lives a few minutes and runs many tiny jobs: the C1 compiler alone and the serial
    # collector start faster and warm up sooner on 2 shared cores than C2 + G1 (measured: JVM start
    # 17.5 -> 10.4 s, the clinic pipeline on Spark 124 -> 72 s); code generation and results are Spark's
    # own either way. The log4j setting is the one spark_session passes.
    log_conf = Path(spark_module.__file__).with_name("log4j2.properties")
    java_opts = f"-Dlog4j2.configurationFile=file:{log_conf} -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    session = spark_session("local[2]", conf={
        "spark.driver.extraJavaOptions": java_opts,
        "spark.local.dir": str(local), "spark.sql.shuffle.partitions": "1", "spark.default.parallelism": "1",
        "spark.sql.session.timeZone": "UTC", "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false"})
    yield session
    session.stop()
