"""Prediction ids: random version-4 UUIDs (32 hex digits), unique, read from os.urandom in
chunks, and never repeated by a forked child."""

from __future__ import annotations

import os
import sys
import uuid

import pytest

from dlworkflow.runtime.observe import new_ids


def test_ids_are_uuid4_hex_and_unique_across_chunks():
    ids = new_ids(1) + new_ids(300) + new_ids(1)  # 302 ids: past one 4 KB chunk (256 ids)
    assert len(set(ids)) == len(ids) == 302
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.hex == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_forked_child_draws_its_own_ids():
    new_ids(1)  # the parent holds unused random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, "".join(new_ids(2)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode()
    os.close(read)
    os.close(write)
    assert len(child) == 64 and not {child[:32], child[32:]} & set(new_ids(2))
