"""The data layer on Apache Spark: session, validation, cleaning, de-identification, encrypted versions.

Why a sub-package imported only on the `engine: spark` path: PySpark (and the
JVM it starts) is an optional extra, `privgov[spark]`; nothing outside this
package imports it, so `privgov --help` and the pandas path never pay for it.
This module and `session` import no PySpark at import time.

Entry points: ``session.spark_session``, ``validate.validate_spark``,
``steps.apply_cleaning_spark``, ``deid.apply_deid_spark``, ``kanon`` (the
k-anonymity gate) and ``store.write_version`` (encrypted partitioned versions).
"""
from __future__ import annotations

from governance.data.spark.session import require_pyspark, spark_session

__all__ = ["require_pyspark", "spark_session"]
