"""Value-based PII detectors behind one registry, one module per detector family.

``registered()`` lists them; :func:`privacy.deid.scan.scan` runs them per column. Families:
``network`` (email, IP, MAC), ``ids`` (national identifiers and financial numbers via
python-stdnum), ``phones`` (phonenumbers), ``names`` (names-dataset index), ``dates`` (dates
of birth), ``address`` (usaddress + street words), ``quasi`` (postcode, sex, race, age),
``record_id`` (case/file numbers), ``spans`` (PII inside free text). No module here imports
Faker or reads the demo generator's name list (tested).
"""
from privacy.deid.detect import address, dates, ids, names, network, phones, quasi, record_id, spans
from privacy.deid.detect.base import ColumnDetector, ColumnSample, Verdict, get, register, registered

for _family in (network, ids, phones, names, dates, address, quasi, spans, record_id):
    for _d in _family.DETECTORS:
        register(_d)

find_spans = spans.find_spans
Span = spans.Span

__all__ = ["ColumnDetector", "ColumnSample", "Verdict", "Span", "find_spans", "get", "register", "registered"]
