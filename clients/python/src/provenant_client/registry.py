"""The client's calls beyond transfers: who am I, lineage, the model registry and promotions (`Client` has them).

A mixin, kept apart from the transfer code in client.py: each call is one or two requests through `Client.request`,
so retries, typed errors and authentication are the client's. Where a call names an artifact version it takes
whatever a pipeline holds: an id, the record the API answered, a `PushResult`, or a reference read in a project
(`fraud-scorer@3`, `fraud-scorer@champion`, `sha256:…`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Union

from provenant_client.errors import Conflict, NotFound

if TYPE_CHECKING:
    from provenant_client.client import PushResult

__all__ = ["RegistryCalls", "VersionLike"]

#: Items asked for per page of a list: the server's maximum, so a long list takes few requests.
PAGE_SIZE = 500
#: An artifact version as a caller may hold it: its id, its record, a push's result, or a reference.
VersionLike = Union[int, str, Mapping[str, Any], "PushResult"]


class RegistryCalls:
    """Calls that `Client` mixes in; they need its `get`, `post` and `request`."""

    # These come from Client; declared so a type checker sees them here.
    if TYPE_CHECKING:

        def get(self, path: str, **params: Any) -> Any: ...
        def post(self, path: str, json: Any) -> Any: ...
        def request(self, method: str, path: str, **kwargs: Any) -> Any: ...
        def resolve(self, ref: str, *, project: str) -> dict[str, Any]: ...

    # Lists -------------------------------------------------------------------------------------------------------

    def iterate(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paginated list, page after page (following `next`, which carries the filters);
        parameters that are None are left out."""
        asked = {name: value for name, value in params.items() if value is not None}
        asked.setdefault("page_size", PAGE_SIZE)
        page = self.get(path, **asked)
        while True:
            yield from page["results"]
            if not page.get("next"):
                return
            page = self.request("GET", page["next"]).json()

    # Who am I ----------------------------------------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        """The caller as the server sees them: username, service account or not, the token in use (name, prefix,
        expiry) and the roles held by project (`GET /me/`)."""
        return self.get("/me/")

    # Lineage -----------------------------------------------------------------------------------------------------

    def version_id(self, version: VersionLike, *, project: str | None = None) -> int:
        """The id of an artifact version given as an id, a record, a push's result or a reference (with `project`)."""
        record = getattr(version, "version", version)  # a PushResult carries the version it published
        if isinstance(record, Mapping):
            return int(record["id"])
        if isinstance(record, int) or (isinstance(record, str) and record.isdigit()):
            return int(record)
        if isinstance(record, str):
            if project is None:
                raise ValueError(f"Reading the reference {record!r} needs the project it is read in: pass project=.")
            return int(self.resolve(record, project=project)["artifact_version"]["id"])
        raise TypeError(f"{version!r} is not an artifact version id, record, push result or reference.")

    def lineage(
        self,
        ref: VersionLike,
        *,
        project: str | None = None,
        direction: str = "both",
        depth: int | None = None,
    ) -> dict[str, Any]:
        """The lineage graph of an artifact version: what made it (`upstream`), what it made (`downstream`) or
        both, to `depth` edges (default all). `{"root", "nodes", "edges", "hidden_nodes"}` as the server answers."""
        version = self.version_id(ref, project=project)
        params: dict[str, Any] = {"direction": direction}
        if depth is not None:
            params["depth"] = depth
        return self.get(f"/lineage/artifact-version/{version}/", **params)

    # Registry ----------------------------------------------------------------------------------------------------

    def model(self, project: str, name: str) -> dict[str, Any]:
        """The registered model `name` of the project; NotFound when there is none the caller may see."""
        # The server's name filter matches a part of the name: keep the one that is the name.
        found = [model for model in self.iterate("/models/", project=project, name=name) if model["name"] == name]
        if not found:
            raise NotFound(f"No registered model {name!r} in project {project!r}.", status=404, code="not_found")
        return found[0]

    def register_model(
        self,
        project: str,
        name: str,
        *,
        description: str = "",
        model_card: str = "",
        owners: list[str] | None = None,
    ) -> dict[str, Any]:
        """The registered model `name` of the project, registered now (with these details) if it has none."""
        try:
            return self.model(project, name)
        except NotFound:
            body = {"project": project, "name": name, "description": description, "model_card": model_card}
            if owners is not None:
                body["owners"] = owners
            try:
                return self.post("/models/", body)
            except Conflict:  # registered meanwhile by another process
                return self.model(project, name)

    def register(
        self, artifact_version: VersionLike, *, model: str, project: str | None = None, **details: Any
    ) -> dict[str, Any]:
        """Register an artifact version as the next version of the model `model` (registered first, with
        `details` such as description or owners, if the project has none by that name). Registering the same
        version again answers the existing model version. Returns the model version's record."""
        version = self.version_id(artifact_version, project=project)
        if project is None:
            project = self.get(f"/artifact-versions/{version}/")["project"]
        registered = self.register_model(project, model, **details)
        return self.post("/model-versions/", {"model": registered["id"], "artifact_version": version})

    # Promotions --------------------------------------------------------------------------------------------------

    def request_promotion(
        self, model_version: int | Mapping[str, Any], *, stage: str, justification: str
    ) -> dict[str, Any]:
        """Ask for a model version (its id or record) to move to `stage` (staging, production, archived); reviewers
        read the justification. Returns the request, with its gates and the approvals it needs."""
        version = int(model_version["id"]) if isinstance(model_version, Mapping) else int(model_version)
        body = {"model_version": version, "target_stage": stage, "justification": justification}
        return self.post("/promotions/", body)

    def promotion(self, request_id: int) -> dict[str, Any]:
        """A promotion request with its gates, decisions and approval standing."""
        return self.get(f"/promotions/{int(request_id)}/")

    def approve(self, request_id: int, *, comment: str = "") -> dict[str, Any]:
        """Approve a promotion request you review (not your own); the last approval needed applies it."""
        return self.post(f"/promotions/{int(request_id)}/approve/", {"comment": comment})

    def reject(self, request_id: int, *, comment: str) -> dict[str, Any]:
        """Reject a promotion request; the requester reads `comment`, which is required."""
        return self.post(f"/promotions/{int(request_id)}/reject/", {"comment": comment})

    def awaiting_me(self, *, project: str | None = None) -> list[dict[str, Any]]:
        """The open promotion requests you may decide and have not (you review their artifact; you did not ask)."""
        return list(self.iterate("/promotions/awaiting-me/", project=project))
