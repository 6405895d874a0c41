"""The upload sessions' SHA-256: OpenSSL's, whose state is saved in rehashes' format, so sessions saved by either
continue with either."""

import hashlib

import pytest
import rehashes
from hypothesis import given
from hypothesis import strategies as st

from artifacts.storage import sha256

pytestmark = pytest.mark.skipif(not sha256.releases_gil(), reason="no usable OpenSSL SHA-256 here: rehashes is used")


@given(data=st.binary(max_size=3000), cut=st.integers(min_value=0, max_value=3000))
def test_a_state_saved_mid_way_is_rehashes_own_and_continues_to_the_same_digest(data, cut):
    cut = min(cut, len(data))
    ours = sha256.new_sha256()
    ours.update(data[:cut])
    theirs = rehashes.PySha256()
    theirs.update(data[:cut])

    assert ours.serialize() == theirs.serialize()
    continued = sha256.new_sha256(theirs.serialize())  # a session saved by a server that hashed with rehashes
    continued.update(data[cut:])
    back = rehashes.PySha256.deserialize(ours.serialize())  # and the other way round
    back.update(data[cut:])
    assert continued.finalize() == back.finalize() == hashlib.sha256(data).hexdigest()


def test_finalizing_leaves_the_state_usable():
    hasher = sha256.new_sha256()
    hasher.update(b"a" * 100)
    assert hasher.finalize() == hashlib.sha256(b"a" * 100).hexdigest()
    hasher.update(b"b")
    assert hasher.finalize() == hashlib.sha256(b"a" * 100 + b"b").hexdigest()
