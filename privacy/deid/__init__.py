"""De-identification: PII detection, transforms (HMAC pseudonyms, generalization), risk.

Public surface (see docs/architecture.md):

* ``scan(df, sample_rows=10000, seed=0) -> list[ColumnFinding]``  (``privacy.deid.scan``)
* column detectors and their registry: ``privacy.deid.detect`` (``registered``, ``register``,
  ``find_spans``); ``redact`` for free text (``privacy.deid.redact``)
* value validators and the per-value registry: ``register_detector``, ``detect_values`` (``privacy.deid.detectors``;
  the module stays reachable as ``privacy.deid.detectors``; note ``privacy.deid.scan`` is the function)
* ``apply_deid(df, specs, key_for_domain) -> (df, report)``, ``pseudonymize``, ``generalize``
  (``privacy.deid.transforms``)
* ``k_anonymity``, ``l_diversity``, ``require_k``, ``enforce_no_direct_identifiers`` (``privacy.deid.risk``)
* ``privacy.deid.names``: the demo generator's first/last name lists (not re-exported here:
  detection must not depend on them, see ``privacy.deid.detect.name_index``)
"""
from privacy.deid.detectors import Detector, detect_value, detect_values, get_detector, register_detector
from privacy.deid.risk import KAnonReport, enforce_no_direct_identifiers, k_anonymity, l_diversity, require_k
from privacy.deid.scan import ColumnFinding, scan
from privacy.deid.transforms import apply_deid, generalize, parse_specs, pseudonymize, suppress_rare, transformed_columns

__all__ = [
    "ColumnFinding", "Detector", "KAnonReport", "apply_deid", "detect_value", "detect_values",
    "enforce_no_direct_identifiers", "generalize", "get_detector", "k_anonymity",
    "l_diversity", "parse_specs", "pseudonymize", "register_detector", "require_k",
    "scan", "suppress_rare", "transformed_columns",
]
