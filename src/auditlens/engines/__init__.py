"""Detectors on other dataframe engines than polars.

:mod:`auditlens.engines.spark` runs the detectors on the PySpark DataFrame API (a real
``SparkSession``, or SQLFrame's sessions such as DuckDB's, which need no JVM) and returns
the same findings frame as :mod:`auditlens.detect`.
"""

from __future__ import annotations

__all__: list[str] = []
