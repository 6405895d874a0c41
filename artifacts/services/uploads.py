"""Resumable upload sessions: a large file sent as ordered chunks over many requests, hashed once as it
arrives, kept only if it hashes to the digest announced at the start, or (a session started without one, through
the API to a folder) to the digest named when it finishes.

A session without a digest lets a client send the file while it hashes it, reading it once instead of twice (first
to hash, then to send). The server cannot tell at the start whether it holds the bytes, so they are written to a
staging file; if they turn out to be held when the digest is named, the staging file goes and nothing is rewritten.
The client keeps dedupe cheap itself: it asks whether the bytes are held (HEAD) as soon as its hash is done, and
cancels the session if they are.

A client that lost its connection asks the session where it stands (its offset) and continues from there.
Chunks before the last must be at least `min_chunk_size` bytes (S3's minimum part, more for a very large
announced size), whatever the storage, so a client never needs to know which storage the server uses.
"""

import contextlib
import logging
import os
import uuid
from datetime import datetime, timedelta
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from artifacts.jobs import VERIFY_DIRECT_UPLOAD
from artifacts.models import Blob, Project, UploadSession, storage_key_for
from artifacts.selectors import blob_held_by
from artifacts.services.blobs import BlobCollected, needs_bytes, received_bytes_errors, record_received_blob
from artifacts.storage import blob_storage, is_s3
from artifacts.storage.reads import hash_stored_blob
from artifacts.storage.writes import (
    MAX_PARTS,
    DiscardSink,
    FileSink,
    S3DirectSink,
    S3Sink,
    min_chunk_size,
    new_hasher,
    parts_past_the_limit,
    sink_for,
    writing_sink,
)
from core.audit.actions import AuditAction
from core.changes import ChangeSet
from core.errors import Conflict, DomainError, InvalidInput, NotFound
from core.jobs import enqueue_on_commit
from core.services import digest_hex

logger = logging.getLogger(__name__)


class OffsetMismatch(DomainError):
    """A chunk that does not start where the upload stands (HTTP 416, as in the OCI distribution spec)."""

    status_code = 416
    code = "offset_mismatch"


def _ttl() -> timedelta:
    return timedelta(seconds=settings.PROVENANT_UPLOAD_SESSION_TTL_SECONDS)


def upload_session_start(
    *, project: Project, digest: str | None, size: int | None, created_by: AbstractBaseUser, direct: bool = False
) -> tuple[UploadSession | None, Blob | None]:
    """Open a session for bytes that must hash to `digest`; or, when the project already holds intact
    bytes with that digest that `created_by` may read, return that blob instead (the client skips the upload).

    `digest` None (API chunks to a folder only): the digest is named when the upload finishes.
    `direct` (S3 only, size required): the client sends the parts straight to the bucket with presigned
    URLs (`upload_session_part_urls`), and a worker checks the digest after `upload_session_finish`.
    """
    if size is not None and size <= 0:
        raise InvalidInput("size is the file's length in bytes and must be positive.", field="size")
    if direct and not is_s3(blob_storage()):
        raise InvalidInput(
            "Direct uploads need S3 storage; this server keeps blobs in a folder, so send chunks through the API.",
            field="direct",
            code="direct_needs_s3",
        )
    if direct and size is None:
        raise InvalidInput("A direct upload needs the file's size, to plan its parts.", field="size")
    if digest is None:
        return _start_without_digest(project=project, size=size, created_by=created_by, direct=direct), None
    hex_digest = digest_hex(digest, "digest")
    # Bytes the starter may not read (a restricted artifact's) are neither confirmed nor skipped: they upload them.
    held = blob_held_by(project, hex_digest, created_by)
    if held is not None and held.state != Blob.State.CORRUPT and not held.is_collected:
        if size is not None and size != held.size:
            # The digest names bytes of one length: a client declaring another is about to send other bytes, or
            # named the wrong ones. Handing back the blob would hide that.
            raise Conflict(
                f"Project '{project.slug}' holds these bytes (sha256:{hex_digest}) with size {held.size}, not "
                f"{size}: check the file's digest and size.",
                field="size",
                code="size_mismatch",
            )
        return None, held
    # Bytes the store already holds are only hashed on their way through; a direct upload always lands in the
    # bucket first, where the worker hashes it.
    sink = S3DirectSink() if direct else writing_sink() if needs_bytes(hex_digest) else DiscardSink()
    return _open_session(project=project, created_by=created_by, hex_digest=hex_digest, size=size, sink=sink,
                         direct=direct), None  # fmt: skip


def _open_session(
    *,
    project: Project,
    created_by: AbstractBaseUser,
    hex_digest: str,
    size: int | None,
    sink: DiscardSink | FileSink | S3Sink,
    direct: bool,
) -> UploadSession:
    """The session's row and its audit entry, with `sink` begun for its bytes (at the digest's key, or a staging
    file when the digest is named at the end): the sink is aborted when the row is not made."""
    state = sink.begin(storage_key_for(hex_digest) if hex_digest else "", size)
    try:
        with transaction.atomic(), ChangeSet() as changes:
            session = UploadSession.objects.create(
                project=project,
                created_by=created_by,
                digest=hex_digest,
                size=size,
                hash_state=new_hasher().serialize(),
                storage_state=state,
                expires_at=timezone.now() + _ttl(),
            )
            changes.audit(
                AuditAction.UPLOAD_SESSION_STARTED,
                obj=session,
                actor=created_by,
                changes={"digest": f"sha256:{hex_digest}" if hex_digest else None, "size": size, "direct": direct},
            )
    except BaseException:
        sink.abort(state)
        raise
    return session


def _start_without_digest(
    *, project: Project, size: int | None, created_by: AbstractBaseUser, direct: bool
) -> UploadSession:
    """A session whose digest is named when it finishes: its bytes go to a staging file in the blob folder.

    Refused where the bytes must go to their final key from the first chunk (an S3 multipart upload is opened on
    it) or where a worker checks them against the digest (direct uploads): the client then hashes first."""
    if direct or is_s3(blob_storage()):
        raise InvalidInput(
            "This server needs the digest when the upload starts (its blobs are in S3): hash the file and send "
            "the digest with the size.",
            field="digest",
            code="digest_required",
        )
    return _open_session(
        project=project, created_by=created_by, hex_digest="", size=size, sink=writing_sink(), direct=False
    )


def _named(session: UploadSession) -> str | None:
    """The session's digest as the audit log writes it; None while a session started without one runs."""
    return f"sha256:{session.digest}" if session.digest else None


def _locked_open_session(session_id: uuid.UUID) -> UploadSession:
    """The session, locked, with its project (for the log); call inside a transaction. Expired sessions count
    as gone."""
    session = (
        UploadSession.objects.select_for_update(of=("self",), no_key=True)
        .select_related("project")
        .filter(pk=session_id)
        .first()
    )
    if session is None or session.expires_at <= timezone.now():
        raise NotFound(f"No open upload session {session_id}: it finished, was cancelled or expired.")
    if session.state == UploadSession.State.COMPLETED:
        raise Conflict(
            f"This upload is finished: its bytes are stored as sha256:{session.digest} in project "
            f"'{session.project.slug}' (GET projects/{session.project.slug}/blobs/sha256:{session.digest}); it "
            "takes no more bytes.",
            code="closed",
        )
    if session.state != UploadSession.State.RECEIVING:
        failure = f" {session.failure}" if session.failure else ""
        raise Conflict(
            f"This upload is {session.get_state_display().lower()}; it takes no more bytes.{failure}", code="closed"
        )
    if session.writer and session.writer_until and session.writer_until > timezone.now():
        raise Conflict(
            "Another request is writing to this upload session; wait for it to finish, then ask where it stands.",
            code="upload_busy",
        )
    return session


def _require_digest_to_finish(session: UploadSession, digest: str | None) -> None:
    """A session started without a digest is finished only by a request that names it: refused before a byte of
    its last chunk is read, so the session stays where it was."""
    if not session.digest and digest is None:
        raise InvalidInput(
            "This upload was started without a digest: finish it with ?digest=sha256:<hex>, what the whole file "
            "hashes to. Nothing was written; the upload still stands where it was.",
            field="digest",
            code="digest_required",
        )


def _locked_session_to_finish(session_id: uuid.UUID, digest: str | None) -> UploadSession:
    """The session, locked, if the digest a client finishes it with (when it names one) is the one announced;
    a session started without one takes it now (saved with the writer lease that finishes it)."""
    session = _locked_open_session(session_id)
    _require_digest_to_finish(session, digest)
    if not session.digest:
        session.digest = digest_hex(digest, "digest")
    elif digest is not None and digest_hex(digest, "digest") != session.digest:
        raise InvalidInput(
            f"This upload was started for sha256:{session.digest}; it cannot be finished as {digest}.",
            field="digest",
        )
    return session


def _refuse_chunk_that_would_strand(session: UploadSession, *, length: int, finishing: bool) -> None:
    """Refuse, before a byte of it is read, a chunk after which the upload could not go on.

    Every chunk but the last must be at least `min_chunk_size` long (S3 refuses shorter parts but the last). With
    the size announced the server knows which chunk is the last, so a short chunk that stops before the end is
    refused here, and the session stays exactly where it was. With no size announced a short chunk can only
    be taken as the last: after it, only finishing (PUT) may follow, which the refusal of a further chunk says.
    The size stays optional because a client streaming what it produces (a pipe, a dump) cannot know it up
    front; what it gives up is being told of a short chunk before sending it, not being able to finish.
    """
    end = session.offset + length
    minimum = min_chunk_size(session.size)
    if session.short_chunk_received:
        if session.size is not None and session.offset < session.size:
            # Left by a server that still accepted a short chunk before the end: it can never complete.
            raise InvalidInput(
                f"An earlier chunk was shorter than {minimum} bytes and the upload stands at {session.offset} of "
                f"the {session.size} bytes announced, so it cannot be completed: cancel it (DELETE) and start again.",
                code="chunk_too_small",
            )
        raise InvalidInput(
            f"The chunk that brought this upload to {session.offset} bytes was shorter than {minimum} bytes, so it "
            "was taken as the last one: finish the upload now (PUT with the digest), or cancel it (DELETE) and "
            f"start again with chunks of at least {minimum} bytes.",
            code="chunk_too_small",
        )
    if parts_past_the_limit(session.storage_state, length):
        used = session.storage_state["next_part"] - 1
        left = MAX_PARTS - used
        # A chunk becomes max(1, length // part_size) parts, so `left` parts take up to this many bytes.
        most = (left + 1) * session.storage_state["part_size"] - 1
        fits = f" A chunk of up to {most} bytes still fits." if left else ""
        raise InvalidInput(
            f"This upload already holds {session.offset} bytes in {used} parts, and this chunk of {length} bytes "
            f"would take it past the {MAX_PARTS} parts the storage allows. Nothing was written.{fits} Finish the "
            "upload (PUT) if everything has been sent; else cancel it and start again announcing the size, so "
            "the minimum chunk grows to fit.",
            code="too_many_parts",
        )
    if session.size is None:
        return
    if end > session.size:
        raise InvalidInput(
            f"This chunk would end at byte {end}, past the {session.size} bytes announced.", code="beyond_size"
        )
    if finishing and end != session.size:
        raise InvalidInput(
            f"The upload stands at {session.offset} of the {session.size} bytes announced and this last chunk has "
            f"{length}, so {session.size - end} would still be missing; nothing was written. Send the rest "
            "(PATCH, then PUT), or all of it with the PUT.",
            code="incomplete",
        )
    if length < minimum and end < session.size:
        raise InvalidInput(
            f"This chunk has {length} bytes, but every chunk before the last must have at least {minimum}; it "
            f"would end at byte {end} of the {session.size} announced, so it is not the last. Nothing was "
            f"written: the upload still stands at {session.offset}. Send at least {minimum} bytes from there, or "
            "everything that is left.",
            code="chunk_too_small",
        )


def _take_writer_lease(
    session: UploadSession, *, start: int, length: int, finishing: bool = False
) -> tuple[UploadSession, uuid.UUID]:
    with transaction.atomic():
        session = _locked_open_session(session.pk)
        if start != session.offset:
            raise OffsetMismatch(
                f"This upload holds {session.offset} bytes, so the next chunk starts at {session.offset}, not at "
                f"{start}. Ask the session where it stands (GET) and continue from there."
            )
        _refuse_chunk_that_would_strand(session, length=length, finishing=finishing)
        session.writer = uuid.uuid4()
        session.writer_until = timezone.now() + timedelta(seconds=settings.PROVENANT_UPLOAD_LEASE_SECONDS)
        session.save(update_fields=["writer", "writer_until", "updated_at"])
    return session, session.writer


def _release_writer_lease(session: UploadSession, writer: uuid.UUID) -> None:
    UploadSession.objects.filter(pk=session.pk, writer=writer).update(writer=None, writer_until=None)


def upload_session_append(
    *, session: UploadSession, stream: BinaryIO, start: int, length: int | None, finishing: bool = False
) -> UploadSession:
    """Append one chunk that starts at byte `start` (`finishing`: the last one, sent with the finishing request).

    The chunk is written and hashed outside any transaction (it may take minutes) under a writer lease;
    its bytes count only once the offset moves, so a chunk cut short leaves the session where it was.
    """
    if is_direct(session):
        raise Conflict(
            "This is a direct upload: send each part to its presigned URL (GET the session for fresh ones).",
            code="direct_upload",
        )
    if length is None:
        raise InvalidInput("Send each chunk with a Content-Length header.", code="length_required")
    if length == 0:
        raise InvalidInput("The chunk is empty: send some of the file's bytes.", code="empty")
    session, writer = _take_writer_lease(session, start=start, length=length, finishing=finishing)
    hasher = new_hasher(bytes(session.hash_state))
    try:
        with received_bytes_errors():
            state = sink_for(session.storage_state).append(session.storage_state, start, stream, length, hasher)
    except BaseException:
        _release_writer_lease(session, writer)
        raise
    moved = UploadSession.objects.filter(pk=session.pk, writer=writer, offset=start).update(
        offset=start + length,
        hash_state=hasher.serialize(),
        storage_state=state,
        short_chunk_received=length < min_chunk_size(session.size),
        writer=None,
        writer_until=None,
        expires_at=timezone.now() + _ttl(),
        updated_at=timezone.now(),
    )
    if not moved:
        raise Conflict(
            "This chunk took longer than the writer lease and another request took the session over; "
            "ask where it stands (GET) and continue from there.",
            code="lease_lost",
        )
    session.refresh_from_db()
    return session


def upload_session_finish(
    *,
    session: UploadSession,
    digest: str | None = None,
    stream: BinaryIO | None = None,
    start: int | None = None,
    length: int | None = 0,
) -> tuple[Blob, bool]:
    """Complete the upload, with an optional last chunk: keep the bytes at their content address if they
    hash to the digest announced, and record them for the project. On a mismatch nothing is kept and the
    session ends. A direct upload is only sealed here and checked by a worker: see upload_session_seal."""
    if is_direct(session):
        raise Conflict("A direct upload is finished with upload_session_seal.", code="direct_upload")
    _require_digest_to_finish(session, digest)
    if length:
        session = upload_session_append(
            session=session,
            stream=stream,
            start=session.offset if start is None else start,
            length=length,
            finishing=True,
        )
    with transaction.atomic():
        session = _locked_session_to_finish(session.pk, digest)
        if session.offset == 0:
            raise InvalidInput("Nothing has been uploaded yet: send the file's bytes first.", code="empty")
        if session.size is not None and session.offset != session.size:
            raise InvalidInput(
                f"{session.offset} of the {session.size} bytes announced have arrived; send the rest first.",
                code="incomplete",
            )
        session.writer = uuid.uuid4()  # finishing: no chunk may be appended meanwhile
        session.writer_until = timezone.now() + timedelta(seconds=settings.PROVENANT_UPLOAD_LEASE_SECONDS)
        session.save(update_fields=["digest", "writer", "writer_until", "updated_at"])
    sink = sink_for(session.storage_state)
    actual = new_hasher(bytes(session.hash_state)).finalize()
    if actual != session.digest:
        sink.abort(session.storage_state)
        with transaction.atomic():
            _session_end(
                session, AuditAction.UPLOAD_SESSION_FAILED, {"offset": session.offset, "received": f"sha256:{actual}"}
            )
        raise InvalidInput(
            f"The {session.offset} bytes received hash to sha256:{actual}, not the sha256:{session.digest} "
            "announced; nothing was stored and the session has ended.",
            field="digest",
            code="digest_mismatch",
        )
    # A session started without a digest wrote bytes the store may hold already: they are not written twice.
    wrote = not isinstance(sink, DiscardSink) and needs_bytes(session.digest)
    try:
        if wrote:
            sink.complete(session.storage_state, storage_key_for(session.digest))
        else:
            sink.abort(session.storage_state)
    except BaseException:
        _release_writer_lease(session, session.writer)
        raise
    try:
        blob, created = record_received_blob(
            project=session.project,
            digest=session.digest,
            size=session.offset,
            uploaded_by=session.created_by,
            wrote_bytes=wrote,
            completing=lambda: _session_completed(session),
        )
    except BlobCollected as refused:
        # The collector removed the bytes while this upload ran (they were held when it began, so it only hashed
        # them, or its write landed before the delete): the session ends, and the client starts a new one.
        with transaction.atomic():
            _session_end(
                session, AuditAction.UPLOAD_SESSION_FAILED, {"offset": session.offset, "failure": refused.code}
            )
        raise
    return blob, created


def _session_completed(session: UploadSession) -> None:
    """Mark a session whose bytes are now a blob as completed, and log it; call inside the transaction that
    records the blob. The row stays until it expires, so a client whose finishing request lost its answer can
    repeat it (or ask the session) and learn where the blob is, instead of hearing of no such session."""
    with ChangeSet() as changes:
        changes.update(
            session,
            state=UploadSession.State.COMPLETED,
            writer=None,
            writer_until=None,
            expires_at=timezone.now() + _ttl(),
        )
        changes.audit(
            AuditAction.UPLOAD_SESSION_FINISHED,
            obj=session,
            changes={"digest": f"sha256:{session.digest}", "size": session.offset},
        )


def upload_session_finished_blob(*, session: UploadSession, digest: str | None, user: AbstractBaseUser) -> Blob:
    """The blob a completed session stored, for a repeated finishing request: the same answer again, if it
    names the same digest (or none) and the project still holds the bytes for `user`."""
    if digest is not None and digest_hex(digest, "digest") != session.digest:
        raise InvalidInput(
            f"This upload finished as sha256:{session.digest}; it cannot be finished again as {digest}.",
            field="digest",
        )
    blob = blob_held_by(session.project, session.digest, user)
    if blob is None:
        raise NotFound(
            f"This upload finished as sha256:{session.digest}, but project '{session.project.slug}' no longer "
            "holds those bytes for you."
        )
    return blob


def _session_end(session: UploadSession, action: AuditAction, changes: dict) -> None:
    """Remove a session whose upload is over, and log how it ended; call inside the transaction that ends it."""
    with ChangeSet() as recorded:
        # Described before the row goes, so the entry names it by its id.
        recorded.audit(action, obj=session, changes={"digest": _named(session), **changes})
        session.delete()


def upload_session_cancel(*, session: UploadSession) -> None:
    with transaction.atomic():
        session = _locked_open_session(session.pk)
        _session_end(session, AuditAction.UPLOAD_SESSION_CANCELLED, {"offset": session.offset})
    sink_for(session.storage_state).abort(session.storage_state)


def upload_sessions_expire(*, now: datetime | None = None) -> int:
    """End sessions idle past their expiry and remove their partial data; also remove partial data that no
    session owns (an upload whose process died half-way), and completed sessions past their expiry. Returns
    the number of sessions ended (completed ones had already ended)."""
    now = now or timezone.now()
    ended = 0
    # A completed session ended (and was logged) when its blob was recorded; it was kept only to answer a
    # repeated finish, and its bytes are at their content address: its row just goes.
    UploadSession.objects.filter(expires_at__lte=now, state=UploadSession.State.COMPLETED).delete()
    stale = (
        UploadSession.objects.filter(expires_at__lte=now)
        .exclude(writer_until__gt=now)
        .exclude(state=UploadSession.State.COMPLETED)
    )
    for session in stale.select_related("project").iterator():
        with transaction.atomic(), ChangeSet() as changes:
            still_stale = UploadSession.objects.filter(pk=session.pk, expires_at__lte=now).exclude(writer_until__gt=now)
            if not still_stale.delete()[0]:
                continue
            changes.audit(
                AuditAction.UPLOAD_SESSION_EXPIRED,
                obj=session,
                changes={"digest": _named(session), "offset": session.offset, "state": session.state},
            )
        sink_for(session.storage_state).abort(session.storage_state)
        ended += 1
    _remove_orphaned_partial_data(older_than=now - _ttl())
    return ended


def _remove_orphaned_partial_data(*, older_than: datetime) -> None:
    owned = list(UploadSession.objects.values_list("storage_state", flat=True))
    storage = blob_storage()
    if is_s3(storage):
        client = storage.connection.meta.client
        known = {state.get("upload_id") for state in owned}
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=storage.bucket_name):
            for upload in page.get("Uploads", []):
                if upload["UploadId"] not in known and upload["Initiated"] < older_than:
                    with contextlib.suppress(client.exceptions.NoSuchUpload):
                        client.abort_multipart_upload(
                            Bucket=storage.bucket_name, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                    logger.info("Aborted orphaned multipart upload %s of %s", upload["UploadId"], upload["Key"])
        return
    known = {state.get("staging") for state in owned}
    folder = storage.path("uploads")
    if not os.path.isdir(folder):
        return
    for entry in os.scandir(folder):
        name = f"uploads/{entry.name}"
        modified = datetime.fromtimestamp(entry.stat().st_mtime, tz=older_than.tzinfo)
        if name not in known and entry.is_file() and modified < older_than:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
            logger.info("Removed orphaned staging file %s", name)


# Direct uploads (S3) ----------------------------------------------------------------------------------


def is_direct(session: UploadSession) -> bool:
    return session.storage_state.get("sink") == S3DirectSink.name


def upload_session_part_urls(*, session: UploadSession) -> list[dict]:
    """Where each part of a direct upload goes: presigned URLs valid until the session would expire, and whether
    the bucket holds the part in full already (`received`), so a client resuming after a crash sends only the
    others. The bucket is asked (ListParts) rather than the client trusted: a part whose answer was lost counts."""
    sink = S3DirectSink()
    seconds = max(60, int((session.expires_at - timezone.now()).total_seconds()))
    held = {part["PartNumber"]: part["Size"] for part in sink.received_parts(session.storage_state)}
    return [
        {**part, "received": held.get(part["part_number"]) == part["length"]}
        for part in sink.part_urls(session.storage_state, expires_in=min(seconds, 7 * 24 * 3600))
    ]


def upload_session_seal(*, session: UploadSession, digest: str | None = None) -> UploadSession:
    """All parts of a direct upload are in the bucket: assemble them and queue the worker that checks the
    digest. The blob exists only once that check passed."""
    sink = S3DirectSink()
    with transaction.atomic(), ChangeSet() as changes:
        session = _locked_session_to_finish(session.pk, digest)
        parts = sink.received_parts(session.storage_state)
        missing = sink.missing_parts(session.storage_state, parts)
        if missing:
            shown = ", ".join(map(str, missing[:20])) + (" …" if len(missing) > 20 else "")
            raise InvalidInput(
                f"Parts {shown} have not arrived in full; send them to their URLs, then finish again.",
                code="incomplete",
            )
        sink.seal(session.storage_state, parts)
        sealed = changes.update(
            session,
            state=UploadSession.State.VERIFYING,
            offset=session.size,
            expires_at=timezone.now() + _ttl(),
        )
        enqueue_on_commit(VERIFY_DIRECT_UPLOAD, str(session.pk))
        changes.audit(
            AuditAction.UPLOAD_SESSION_SEALED, obj=session, changes={"state": sealed["state"], "size": session.size}
        )
    return session


def upload_session_verify_direct(*, session: UploadSession) -> UploadSession:
    """Hash the assembled bytes of a direct upload where they landed; keep them at their content address and
    record the blob only if they hash to the announced digest. Safe to run twice."""
    sink = S3DirectSink()
    state = session.storage_state
    try:
        actual, size = hash_stored_blob(state["staging"])
    except FileNotFoundError:
        actual, size = None, 0
    before = session.state
    if actual != session.digest or size != session.size:
        sink.abort(state)
        failure = (
            f"The {size} bytes received hash to sha256:{actual}, not the sha256:{session.digest} announced "
            f"({session.size} bytes); nothing was stored."
            if actual
            else "The assembled bytes are gone from the bucket; nothing was stored. Start a new upload."
        )
        with transaction.atomic(), ChangeSet() as changes:
            changes.update(session, state=UploadSession.State.FAILED, failure=failure)
            changes.audit(
                AuditAction.UPLOAD_SESSION_FAILED,
                obj=session,
                changes={"state": [before, session.state], "failure": session.failure},
            )
        return session
    sink.complete(state, storage_key_for(session.digest))

    def complete_session() -> None:
        with ChangeSet() as changes:
            changes.update(session, state=UploadSession.State.COMPLETED)
            changes.audit(
                AuditAction.UPLOAD_SESSION_FINISHED,
                obj=session,
                changes={"state": [before, session.state], "size": size},
            )

    try:
        record_received_blob(
            project=session.project,
            digest=session.digest,
            size=size,
            uploaded_by=session.created_by,
            wrote_bytes=True,
            completing=complete_session,
        )
    except BlobCollected as refused:
        # The collector's delete removed what was just copied to the digest's key: nothing is recorded, and the
        # client, finding the session failed, uploads again.
        with transaction.atomic(), ChangeSet() as changes:
            changes.update(session, state=UploadSession.State.FAILED, failure=refused.message)
            changes.audit(
                AuditAction.UPLOAD_SESSION_FAILED,
                obj=session,
                changes={"state": [before, session.state], "failure": session.failure},
            )
    return session
