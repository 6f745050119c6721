"""The session helper: local-only by default, a clear line when PySpark is absent."""
from __future__ import annotations

import builtins
import sys

import pytest

from governance.data.spark import session as sess
from governance.errors import InputError


def test_local_session_binds_loopback_and_disables_ui(spark) -> None:
    conf = spark.sparkContext.getConf()
    assert spark.sparkContext.master == "local[2]"
    assert conf.get("spark.driver.host") == "127.0.0.1"
    assert conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.ui.enabled") == "false"
    # workers run this interpreter (the one with pandas and privgov), not the system python
    ran = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("sys").executable).collect()
    assert ran == [sys.executable]


def test_master_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sess.MASTER_ENV, raising=False)
    assert sess.resolve_master(None) == "local[2]"
    monkeypatch.setenv(sess.MASTER_ENV, "spark://10.0.0.5:7077")
    assert sess.resolve_master(None) == "spark://10.0.0.5:7077"
    assert sess.resolve_master("local[4]") == "local[4]"
    assert sess.is_local("local[4]") and not sess.is_local("spark://h:7077")


def test_missing_pyspark_is_one_line_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pyspark(name, *args, **kwargs):
        if name == "pyspark" or name.startswith("pyspark."):
            raise ImportError("No module named 'pyspark'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyspark)
    with pytest.raises(InputError, match=r"pip install 'privgov\[spark\]'") as err:
        sess.require_pyspark()
    assert "\n" not in str(err.value)
