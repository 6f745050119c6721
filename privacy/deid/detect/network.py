"""Emails, IPv4/IPv6 and MAC addresses: format gate plus a parser (``ipaddress``) or RFC limits.

Decision, documented: a dotted quad in a column whose name says version/build/release is a
version string, not an IP address; ``1.2.3.4`` elsewhere is an IPv4 address when the column's
values parse as addresses. Version strings in the wild mostly fail the gate anyway (``2.10.3``,
``v1.4.0-rc1``), and dotted-quad ones rarely exceed 255 in every part.
"""
from __future__ import annotations

import ipaddress
import re

from privacy.deid.detect.base import ColumnSample, Verdict, hinted
from privacy.deid.detect.patterns import ValidatedDetector

__all__ = ["is_valid_email", "is_valid_ip", "is_valid_mac", "DETECTORS"]

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}")
EMAIL_SPAN = r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}"
IPV4_SPAN = r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]*\d)"
IPV6_SPAN = r"(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}(?![:\w])|(?<![:\w])[0-9A-Fa-f:]*::[0-9A-Fa-f:]*[0-9A-Fa-f](?![:\w])"
MAC_SPAN = r"(?<![\w:-])[0-9A-Fa-f]{2}(?:([:-])[0-9A-Fa-f]{2})(?:\1[0-9A-Fa-f]{2}){4}(?![\w:-])"


def is_valid_email(value: object) -> bool:
    """RFC 5321 lengths, no leading/trailing/double dots, labels not starting/ending in '-'."""
    try:
        s = str(value).strip()
        if len(s) > 254 or not _EMAIL_RE.fullmatch(s):
            return False
        local, _, domain = s.rpartition("@")
        if len(local) > 64 or local[0] == "." or local[-1] == "." or ".." in local:
            return False
        return all(0 < len(lb) <= 63 and lb[0] != "-" and lb[-1] != "-" for lb in domain.split("."))
    except Exception:
        return False


def is_valid_ip(value: object) -> bool:
    """IPv4 (no leading zeros) or IPv6, as ``ipaddress`` parses it."""
    try:
        s = str(value).strip()
        if not s or len(s) > 45:
            return False
        ipaddress.ip_address(s)
        return True
    except Exception:
        return False


def is_valid_mac(value: object) -> bool:
    """48-bit MAC as six hex pairs separated consistently by ':' or '-' (or dotted Cisco form)."""
    try:
        s = str(value).strip()
        return bool(re.fullmatch(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}", s)
                    or re.fullmatch(r"[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}", s))
    except Exception:
        return False


class _IpDetector(ValidatedDetector):
    def detect(self, col: ColumnSample) -> Verdict | None:
        if hinted(r"_(version|versions|ver|vsn|release|build|firmware|fw|semver)_", col.column):
            return None
        return super().detect(col)


DETECTORS = [
    ValidatedDetector(
        name="email", pii_type="email", validate=is_valid_email, validator_name="RFC 5321 email rules",
        gate=r"[^@\s]{1,64}@[^@\s]{1,253}\.[A-Za-z]{2,24}", hints=r"_(e_?mail|mail|email_address)_",
        description="email addresses (format + RFC length rules)"),
    _IpDetector(
        name="ip_address", pii_type="ip_address", validate=is_valid_ip, validator_name="ipaddress parsing",
        gate=r"[\d.]{7,15}|[0-9A-Fa-f:.]{2,45}", hints=r"_(ip|ips|ip_address|ipaddr|ipv4|ipv6|client_ip|remote_addr|src_ip|dst_ip)_",
        description="IPv4 / IPv6 addresses (ipaddress)"),
    ValidatedDetector(
        name="mac_address", pii_type="mac_address", validate=is_valid_mac, validator_name="MAC-48 format",
        gate=r"[0-9A-Fa-f:.-]{14,17}", hints=r"_(mac|mac_address|macaddr|hwaddr|bssid)_",
        description="MAC-48 hardware addresses"),
]
