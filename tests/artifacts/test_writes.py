"""How bytes are cut into S3 parts and read from a request: pure rules, no storage needed."""

import io

import pytest
import rehashes
from hypothesis import given
from hypothesis import strategies as st

from artifacts.storage.writes import MIN_PART_SIZE, S3Sink, TruncatedBody, part_size_for, read_blocks

MiB = 1024 * 1024


@given(
    length=st.integers(min_value=1, max_value=200 * 10**9),
    part=st.integers(min_value=MIN_PART_SIZE, max_value=64 * MiB),
)
def test_parts_cover_the_bytes_exactly_and_only_the_last_may_differ(length, part):
    sizes = S3Sink.piece_sizes(length, part)
    assert sum(sizes) == length
    assert all(size == part for size in sizes[:-1])
    assert sizes[-1] < 2 * part or len(sizes) == 1
    assert sizes[-1] >= min(part, length)


@pytest.mark.parametrize("size", [10**9, 50 * 1024**3, 200 * 1024**3])
def test_the_largest_files_fit_in_s3s_ten_thousand_parts(size, settings):
    part = part_size_for(size)
    assert len(S3Sink.piece_sizes(size, part)) <= 10_000
    assert part >= settings.PROVENANT_UPLOAD_PART_SIZE


def test_a_short_body_names_how_far_it_got_in_the_whole_upload():
    with pytest.raises(TruncatedBody) as error:
        list(read_blocks(io.BytesIO(b"x" * 10), 20, rehashes.PySha256(), already=100, total=500))
    assert (error.value.received, error.value.expected) == (110, 500)


def test_a_write_that_fails_in_the_writer_thread_fails_the_upload():
    from artifacts.storage.writes import OneShotSha256, _BlockWriter

    class FullDisk(io.BytesIO):
        def write(self, data):
            raise OSError(28, "No space left on device")

    def send_blocks():
        with _BlockWriter(FullDisk(), OneShotSha256(), start=0, depth=2) as writer:
            for _ in range(10):
                writer.put(b"x" * 1024)

    with pytest.raises(OSError, match="No space left"):
        send_blocks()


def test_the_writer_hashes_and_writes_every_block_in_order():
    import hashlib

    from artifacts.storage.writes import OneShotSha256, _BlockWriter

    target, hasher = io.BytesIO(), OneShotSha256()
    blocks = [bytes([i]) * 1000 for i in range(50)]
    with _BlockWriter(target, hasher, start=0, depth=3) as writer:
        for block in blocks:
            writer.put(block)
    assert target.getvalue() == b"".join(blocks)
    assert hasher.finalize() == hashlib.sha256(b"".join(blocks)).hexdigest()
