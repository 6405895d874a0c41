"""`Client`: Provenant's API from Python, for pipelines that push what they train and pull what they serve.

Transfers follow what the server offers (README, "Uploads" and "Downloads"): a file's digest is computed in one
read before anything is sent, so a `HEAD` can ask whether the project already holds those bytes and nothing is
sent again when it does; small files go in one streaming `PUT`, large ones through an upload session (straight to
the bucket in parallel parts when the server keeps blobs in S3) whose URL is kept in the cache folder, so a later
process (after a dropped connection, a crash, a SIGKILL) sends only the rest: see `uploads`. Downloads (`downloads`:
large blobs in parallel byte ranges) land in a content-addressed cache, checked against the digest asked for and the
server's `Repr-Digest`, so pulling the same bytes again reads nothing from the network.

Failures that may pass (a 5xx, a dropped connection, a timeout) are retried with exponential backoff, but only
when sending the request again cannot do it twice: GET, HEAD, PUT, DELETE, and an upload chunk's PATCH (its
`Upload-Offset` makes a repeat answer 416, read as "already written") are retried on any of them. A POST or another
PATCH is sent again only when the server surely did not carry it out: the connection was never made (connect error
or timeout) or the answer was 429 or 503. After a connection lost once the request was sent, or another 5xx, it
raises `ServerError` with code `outcome_unknown` (a run's creation then looks the run up by its external id: see
`runs`). A 4xx is never retried and becomes a typed `ProvenantError` carrying the server's `code` and `detail`.
The bearer token goes only to the server's own origin: an absolute URL of another one is refused (`foreign_url`).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from provenant_client import config, downloads, transfers
from provenant_client.audit import AuditCalls
from provenant_client.errors import Conflict, NotFound, ProvenantError, ServerError, error_from_response
from provenant_client.registry import RegistryCalls
from provenant_client.runs import RUN_ID_VARIABLE, Run
from provenant_client.transfers import RETRY_STATUSES, Progress
from provenant_client.uploads import Uploader, UploadResult

__all__ = ["Client", "PushResult", "UploadResult"]

API_PREFIX = "/api/v1"
USER_AGENT = "provenant-client/0.1.0"
MiB = 1024 * 1024
#: How a destination says it is a folder even before it exists.
FOLDER_ENDINGS = tuple({"/", os.sep, os.altsep or "/"})
#: Methods whose repetition does what one request did: retried on any failure that may pass.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Failures that show a request never reached the server: the only ones after which a POST is sent again.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
#: Answers that say the server did not carry the request out ("too many", "unavailable"): a POST is sent again.
NOT_CARRIED_OUT_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class PushResult(UploadResult):
    """An upload, then the artifact version (the server's record) that publishes its bytes."""

    version: dict[str, Any] = field(default_factory=dict)
    #: The signature attached to the version when the push signed the file (the server's record, checked later).
    signature: dict[str, Any] | None = None


class Client(RegistryCalls, AuditCalls):
    """A connection to one Provenant server as one user (their bearer token).

    Transfers and runs are here; who-am-I, lineage, the registry and promotions come from `RegistryCalls`
    (registry.py), the audit export and its offline verification from `AuditCalls` (audit.py).

    `url` is the server's address (`https://provenant.example.com`, with or without `/api/v1`); with no
    arguments the environment or the default profile says which server and token (see `config`). Use it as a
    context manager, or call `close()`, to release its connections.

    Uploads (see `uploads`): files of at least `upload_session_threshold` go through a resumable upload session,
    smaller ones in one PUT. Through the API a session's chunks start at `chunk_size` (the server's `min_chunk_size`
    is the floor) and grow with the measured speed up to `max_chunk_size`. When the server keeps blobs in S3 the
    session's parts go straight to the bucket, `upload_parallelism` at a time; `direct_uploads` False never asks
    for that; None (the default) or True asks, and falls back to API chunks on a server that cannot.
    A direct upload waits up to `verification_timeout` seconds for the server's worker to check its digest.
    `download_parallelism`: how many ranges of one blob are downloaded at once, for blobs of at least
    `parallel_download_threshold` bytes (smaller ones, and any with `download_parallelism=1`, come in one stream);
    None (the default) takes 4 when the server redirects to its storage (S3) and one stream when it serves the bytes
    itself, where SHA-256, not the link, is the limit (see `downloads`).
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        profile: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.5,
        chunk_size: int = 16 * MiB,
        max_chunk_size: int = 256 * MiB,
        upload_session_threshold: int = 64 * MiB,
        upload_parallelism: int = 4,
        direct_uploads: bool | None = None,
        verification_timeout: float = 600.0,
        transport: httpx.BaseTransport | None = None,
        download_parallelism: int | None = None,
        parallel_download_threshold: int = 32 * MiB,
    ) -> None:
        settings = config.resolve_settings(url, token, profile)
        server = settings.url[: -len(API_PREFIX)] if settings.url.endswith(API_PREFIX) else settings.url
        self.server = server
        self.profile = settings.profile
        self.cache = transfers.Cache(Path(cache_dir) if cache_dir is not None else config.cache_dir())
        self.retries = retries
        self.backoff = backoff
        self.chunk_size = chunk_size
        self.max_chunk_size = max_chunk_size
        self.upload_session_threshold = upload_session_threshold
        self.upload_parallelism = upload_parallelism
        self.direct_uploads = direct_uploads
        self.verification_timeout = verification_timeout
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        #: The underlying httpx client: its `event_hooks` see every request the client makes (a download's, from the
        #: threads that send them).
        self.http = httpx.Client(
            base_url=server + API_PREFIX,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
        )
        self.uploads = Uploader(self)
        #: Fetches blobs into the cache (see `provenant_client.downloads`).
        self.downloads = downloads.Downloader(
            self.http,
            cache=self.cache,
            retries=retries,
            pause=self._pause,
            timeout=timeout,
            parallelism=download_parallelism,
            parallel_threshold=parallel_download_threshold,
            own_transport=transport is not None,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.uploads.close()
        self.http.close()

    # Requests ----------------------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        body: Callable[[], Iterator[bytes]] | None = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send a request (a path under `/api/v1`, or an absolute URL the server gave) and return its answer,
        retrying what may pass; an answer of 400 or more not in `allow` raises its `ProvenantError`.

        `body` makes a fresh iterator of the request's bytes for each attempt; give its length in `headers`
        (`Content-Length`), or it would go chunked, which the server refuses (411).
        """
        idempotent = method in IDEMPOTENT_METHODS or (method == "PATCH" and "Upload-Offset" in (headers or {}))
        url = self._checked_url(method, path)
        attempt = 0
        while True:
            content = body() if body is not None else None
            try:
                response = self.http.request(method, url, params=params, json=json, headers=headers, content=content)
            except httpx.UnsupportedProtocol as error:  # a transport error that no retry mends
                raise ProvenantError(f"{method} {path}: {error}", code="invalid_url") from error
            except httpx.TransportError as error:
                if not idempotent and not isinstance(error, NOT_SENT_ERRORS):
                    raise ServerError(
                        f"{method} {path}: the connection to {self.server} failed after the request was sent "
                        f"({error!r}); it may or may not have been carried out, so it is not sent again: check "
                        "before repeating it.",
                        code="outcome_unknown",
                    ) from error
                if attempt >= self.retries:
                    raise ServerError(
                        f"{method} {path}: no answer from {self.server} after {attempt + 1} attempts ({error!r})",
                        code="unreachable",
                    ) from error
            else:
                retry_statuses = RETRY_STATUSES if idempotent else NOT_CARRIED_OUT_STATUSES
                if response.status_code not in retry_statuses or attempt >= self.retries:
                    if response.status_code >= 400 and response.status_code not in allow:
                        raise error_from_response(response)
                    return response
            attempt += 1
            self._pause(attempt)

    def _checked_url(self, method: str, path: str) -> str:
        """`path` itself, after checking that an absolute URL (one the server gave: a session's, a page's `next`)
        is of the server's own origin: the bearer token goes to no other."""
        if "://" not in path:
            return path
        if downloads.origin(path) != downloads.origin(self.server):
            raise ProvenantError(
                f"{method} {path}: not a URL of {self.server}, so it is not sent (it would carry your token); "
                "a proxy in front of the server may be rewriting its URLs.",
                code="foreign_url",
            )
        return path

    def _pause(self, attempt: int) -> None:
        """Wait before retry number `attempt`: exponential backoff, capped at 30 s, with jitter so that many
        clients cut off by the same outage do not all come back in the same instant."""
        time.sleep(min(30.0, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random()))

    def get(self, path: str, **params: Any) -> Any:
        """The JSON answer of a GET."""
        return self.request("GET", path, params=params or None).json()

    def post(self, path: str, json: Any) -> Any:
        """The JSON answer of a POST."""
        return self.request("POST", path, json=json).json()

    # Blobs -------------------------------------------------------------------------------------------------------

    def _blob_url(self, project: str, digest: str) -> str:
        return f"/projects/{quote(project, safe='')}/blobs/{transfers.normalize_digest(digest)}"

    def blob_exists(self, project: str, digest: str) -> bool:
        """Whether the project already holds intact bytes with this digest (a HEAD: nothing is read). A server that
        sends downloads to the bucket answers a redirect (302) for bytes it holds, which counts as held."""
        response = self.request("HEAD", self._blob_url(project, digest), allow=(404, 409))
        return response.status_code == 200 or response.is_redirect

    def upload(self, path: str | os.PathLike[str], *, project: str) -> UploadResult:
        """Store the file's bytes in the project unless it holds them already; nothing is published."""
        return self.uploads.upload_file(Path(path), project=project, progress=None)

    # Artifacts ---------------------------------------------------------------------------------------------------

    def artifact(self, project: str, name: str) -> dict[str, Any]:
        """The artifact `name` of the project; NotFound when there is none the caller may see."""
        found = self.get("/artifacts/", project=project, name=name)["results"]
        if not found:
            raise NotFound(f"No artifact {name!r} in project {project!r}.", status=404, code="not_found")
        return found[0]

    def ensure_artifact(self, project: str, name: str, *, kind: str = "model") -> dict[str, Any]:
        """The artifact `name`, created (of `kind`) when the project has none by that name."""
        try:
            return self.artifact(project, name)
        except NotFound:
            try:
                return self.post("/artifacts/", {"project": project, "name": name, "kind": kind})
            except Conflict:  # created meanwhile by another process
                return self.artifact(project, name)

    def push(
        self,
        path: str | os.PathLike[str],
        *,
        project: str,
        artifact: str,
        run: int | None = None,
        metadata: dict[str, Any] | None = None,
        media_type: str | None = None,
        kind: str = "model",
        progress: Progress | None = None,
        license: str | None = None,
        sign_key: str | os.PathLike[str] | None = None,
        sign_certificate: str | os.PathLike[str] | None = None,
        sign_chain: Iterable[str | os.PathLike[str]] = (),
    ) -> PushResult:
        """Store the file's bytes in the project (unless it holds them) and publish them as the next version of
        `artifact`, created as a `kind` artifact if the project has none by that name.

        Pushing the same bytes again with the same run and details returns the existing version; with other
        details the server answers Conflict (`already_published`), and bytes that were a version of this artifact
        since deleted Conflict (`version_deleted`). `progress` hears how far the upload got. `license` is the
        bytes' SPDX license expression ("Apache-2.0"), fixed with the version.

        Bytes the project held when asked (so not sent) may be removed by the server's garbage collector before
        the publish, once no live version used them: the server then answers `blob_collected`, and the bytes are
        sent and the publish made once more.

        `sign_key` (an elliptic-curve private key, PEM; with `sign_certificate` and `sign_chain` for a
        certificate-based signature) signs the file with model_signing before anything is sent, and attaches the
        signature to the version once published (see `provenant_client.signing`).
        """
        source = Path(path)
        bundle = None
        if sign_key is not None:
            from provenant_client.signing import sign_file

            bundle = sign_file(source, private_key=sign_key, certificate=sign_certificate, chain=list(sign_chain))
        # The artifact first: a name or kind the server refuses costs no upload.
        record = self.ensure_artifact(project, artifact, kind=kind)
        stored = self.uploads.upload_file(source, project=project, progress=progress)
        digest, size = stored.digest, stored.size
        body: dict[str, Any] = {"artifact": record["id"], "digest": digest}
        if run is not None:
            body["run"] = run
        if metadata is not None:
            body["metadata"] = metadata
        if media_type is not None:
            body["media_type"] = media_type
        if license is not None:
            body["license"] = license
        sent_before = 0
        try:
            version = self.post("/artifact-versions/", body)
        except Conflict as refused:
            if refused.code != "blob_collected":
                raise
            sent_before = stored.bytes_sent
            stored = self.uploads.upload_file(source, project=project, progress=progress)
            version = self.post("/artifact-versions/", body)
        signature = self.attach_signature(version["id"], bundle) if bundle is not None else None
        return PushResult(
            digest=digest,
            size=size,
            bytes_sent=sent_before + stored.bytes_sent,
            already_held=stored.already_held,
            resumed_from=stored.resumed_from,
            version=version,
            signature=signature,
        )

    def attach_signature(self, version_id: int, bundle: Mapping[str, Any]) -> dict[str, Any]:
        """Attach a model-signing bundle (a .sig file's JSON) to a version; the server checks it in the background
        against the version's bytes and the project's trusted keys (see `signatures`)."""
        return self.post(f"/artifact-versions/{int(version_id)}/signatures/", {"bundle": dict(bundle)})

    def signatures(self, version_id: int) -> list[dict[str, Any]]:
        """A version's signatures with the server's verdicts (`verified`, `trusted`, `detail`)."""
        return self.get(f"/artifact-versions/{int(version_id)}/signatures/")

    def resolve(self, ref: str, *, project: str) -> dict[str, Any]:
        """What a reference names now, in one call: `artifact@3`, `model@production`, `model@champion`,
        `artifact@champion` (the version a model of the project holds under that alias) or a digest. Always asked
        of the server: stages and aliases move, so a resolution is never cached (the bytes it names are)."""
        return self.get("/resolve/", project=project, ref=ref)

    def version(self, version_id: int) -> dict[str, Any]:
        """An artifact version's record; kept in the cache after the first read, since versions never change."""
        record_path = self.cache.version_record_path(self.server, version_id)
        record = self.cache.load_json(record_path)
        if record is None:
            record = self.get(f"/artifact-versions/{int(version_id)}/")
            self.cache.save_json(record_path, record)
        return record

    # Runs --------------------------------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        project: str,
        name: str = "",
        inputs: Iterable[Any] = (),
        params: Mapping[str, Any] | None = None,
        allow_dirty: bool = False,
        repo: str | os.PathLike[str] | None = None,
        external_id: str | None = None,
        input_dataset_versions: Iterable[int] = (),
        input_artifact_versions: Iterable[int] = (),
        environment: Mapping[str, Any] | None = None,
        entry_point: str | None = None,
    ) -> Run:
        """A run of the calling script in `project`, to use as `with client.start_run(...) as run:`.

        Captures its context now (git commit and remote of `repo`, default the current folder; entry point, Python,
        installed packages, hardware) and raises `DirtyWorkTree`, sending nothing, when the work tree has changes
        and `allow_dirty` is false. `inputs` are dataset or artifact version records; `external_id` defaults to
        the name, the time and random hex. See `provenant_client.runs` for when the run is sent and finished.
        """
        return Run(
            self,
            project=project,
            name=name,
            external_id=external_id,
            inputs=inputs,
            input_dataset_versions=input_dataset_versions,
            input_artifact_versions=input_artifact_versions,
            params=params,
            repo=repo,
            allow_dirty=allow_dirty,
            environment=environment,
            entry_point=entry_point,
        )

    def current_run(self) -> Run | None:
        """The run a wrapping `provenant run` opened for this process (its id in `PROVENANT_RUN_ID`), attached to
        log metrics and artifacts to; None when the process was not started that way."""
        run_id = os.environ.get(RUN_ID_VARIABLE, "")
        if not run_id.isdigit():
            return None
        return Run.attach(self, int(run_id))

    # Downloads ---------------------------------------------------------------------------------------------------

    def pull(
        self,
        ref: int | str,
        dest: str | os.PathLike[str] | None = None,
        *,
        project: str | None = None,
        link: bool = False,
        progress: Progress | None = None,
    ) -> Path:
        """Fetch the bytes of `ref` into the cache, then to `dest`: a file, or a folder (one that exists, or a path
        ending in a separator, created) to put it in as `<artifact>-v<number>` with the suffix of the version's
        `filename` metadata (`fraud-scorer-v3.safetensors`), or as the digest's hex; a hard link instead of a copy
        when `link`. Returns the path written, or the cached file without `dest`. `ref` is an artifact version's
        id, a digest with the `project` that holds it, or a reference with its `project` (`fraud-scorer@production`,
        `model@champion`, `artifact@3`: see resolve).

        Bytes already cached are not downloaded again; a version already read is not asked for again either.
        `progress` hears how far a download got.
        """
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            record = self.version(int(ref))
            digest, size, url = record["digest"], int(record["size"]), record["download_url"]
            name = _version_file_name(record)
        elif isinstance(ref, str) and transfers.is_digest(ref):
            if project is None:
                raise ValueError("Pulling by digest needs the project that holds the bytes: pass project=.")
            digest, size, url = transfers.normalize_digest(ref), None, self._blob_url(project, ref)
            name = digest.split(":", 1)[1]
        elif isinstance(ref, str) and "@" in ref:
            if project is None:
                raise ValueError("Pulling by reference needs the project it is read in: pass project=.")
            record = self.resolve(ref, project=project)["artifact_version"]
            digest, size, url = record["digest"], int(record["size"]), record["download_url"]
            name = _version_file_name(record)
        else:
            raise ValueError(f"{ref!r} is not a version id, a sha256 digest or a reference like 'model@production'.")
        cached = self.cache.cached_blob(digest, size)
        if cached is None:
            if size is None:  # a digest: the blob's state says its size, so a large one may come in ranges
                size = int(self.get(f"{url}/state/")["size"])
            cached = self.downloads.download(url, digest, size, progress)
        if dest is None:
            return cached
        target = Path(dest)
        if target.is_dir() or str(dest).endswith(FOLDER_ENDINGS):  # `serving/` names a folder, made if need be
            target = target / name
        return transfers.place(cached, target, link=link)

    def __repr__(self) -> str:
        return f"Client({self.server!r}, profile={self.profile!r})"


def _version_file_name(record: Mapping[str, Any]) -> str:
    """`<artifact>-v<number>`, with the suffix of the file it was pushed from when its metadata names one."""
    filename = (record.get("metadata") or {}).get("filename")
    named = Path(filename) if isinstance(filename, str) else Path("")
    suffix = (".tar" if named.stem.endswith(".tar") else "") + named.suffix  # model.tar.gz: .tar.gz
    return f"{record['artifact_name']}-v{record['number']}{suffix}"
