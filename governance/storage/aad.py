"""Associated data (AAD) bound into every encrypted object: the one place it is built.

Why: the AEAD tag covers these bytes, so a ciphertext cannot be replayed as
another dataset version, another run's model or another run's checkpoint. Two
copies of such a literal drifting apart would silently break decryption (or,
worse, make two kinds of object interchangeable); every writer and reader calls
these functions instead.
"""
from __future__ import annotations


def dataset_version(dataset: str, version: int, kind: str) -> bytes:
    return f"privgov:dataset={dataset};version={version};kind={kind}".encode()


def model(run_uid: str) -> bytes:
    return f"privgov:model;run={run_uid}".encode()


def checkpoint(run_uid: str) -> bytes:
    return f"privgov:checkpoint;run={run_uid}".encode()


def partition(dataset: str, version: int, kind: str, index: int) -> bytes:
    """One partition file of a partitioned version: its index is bound, so files cannot trade places."""
    return dataset_version(dataset, version, kind) + f";partition={index}".encode()


def manifest(dataset: str, version: int, kind: str) -> bytes:
    """The manifest that lists a partitioned version's files (never interchangeable with a partition)."""
    return dataset_version(dataset, version, kind) + b";manifest"
