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
