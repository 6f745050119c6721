"""The data layer on Apache Spark: session, validation and encrypted partitioned versions.

Why a sub-package imported only on the `engine: spark` path: PySpark (and the
JVM it starts) is an optional extra, `privgov[spark]`; nothing outside this
package imports it, so `privgov --help` and the pandas path never pay for it.
"""
from __future__ import annotations

from governance.data.spark.session import require_pyspark, spark_session

__all__ = ["require_pyspark", "spark_session"]
