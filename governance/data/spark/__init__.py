"""The data stages on PySpark: cleaning and de-identification as Spark column expressions.

Entry points (pyspark is imported only by these modules, never by ``privgov --help``):
``governance.data.spark.steps.apply_cleaning_spark`` and ``governance.data.spark.deid.apply_deid_spark``.
"""
