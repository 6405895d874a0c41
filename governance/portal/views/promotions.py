"""Portal pages for promotion requests: the worklist, and a request's page, which answers "what changes if I
approve?" above the fold: the candidate against the model's production version (metrics with their deltas judged by
the policy's thresholds, parameters that differ, input datasets, code commits, digests), what is left to do, then
the gates now with their history, the decisions, the discussion and the forms.

Reads go through the selectors and each model's `visible_to(user)`, so an object the user may not see answers 404;
a run or dataset version the user may not read is left out, as on the model pages. Decisions and comments go
through governance/registry/services/promotions.py, the same functions the API and the admin call: the
`DecisionRights` below only choose which form to show and what to explain; the service judges again when a form is
posted, and its refusal is shown as a message.
"""

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from artifacts.models import DatasetVersion, Run, RunDatasetInput
from core.accounts import require_step_up
from core.errors import DomainError
from governance.portal.tables import sort_and_page
from governance.portal.views.registry import (
    PAGE_SIZE,
    DiffRow,
    code_compare_url,
    diff_rows,
    is_number,
    run_field,
    shown,
    version_number,
    with_seen_runs,
)
from governance.registry import selectors
from governance.registry.gates import metric_directions
from governance.registry.models import (
    ModelVersion,
    PromotionComment,
    PromotionDecision,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    Stage,
)
from governance.registry.services import promotions

#: The columns the list of all promotion requests may be sorted by; newest first unless asked otherwise.
PROMOTION_SORTS = {
    "id": "pk",
    "model": ("registered_model__name", "-requested_at"),
    "state": ("state", "-requested_at"),
    "requested": "requested_at",
    "expires": "expires_at",
}


# The worklist ---------------------------------------------------------------------------------------------------------


@login_required
@require_GET
def promotion_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    visible = selectors.promotion_request_list().visible_to(user)
    # The worklist: what expires soonest first.
    awaiting = list(visible.awaiting(user).order_by("expires_at", "pk")[: PAGE_SIZE + 1])
    awaiting_more = len(awaiting) > PAGE_SIZE
    awaiting = awaiting[:PAGE_SIZE]
    requests, state, model = visible, request.GET.get("state", ""), None
    if state in PromotionRequest.State.values:
        requests = requests.filter(state=state)
    else:
        state = ""
    model_pk = version_number(request.GET.get("model"))
    if model_pk is not None:
        model = RegisteredModel.objects.visible_to(user).filter(pk=model_pk).first()
        requests = requests.filter(registered_model_id=model.pk if model is not None else None)
    table = sort_and_page(request, requests, allowed_sorts=PROMOTION_SORTS, default="-requested", per_page=PAGE_SIZE)
    return render(
        request,
        "portal/promotions/list.html",
        {
            "awaiting": awaiting,
            "awaiting_more": awaiting_more,
            "page": table.page,
            "sorting": table.sorting,
            "state": state,
            "states": PromotionRequest.State.choices,
            "model": model,
        },
    )


# What changes if it is approved ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricRow:
    """One metric of the production version and the candidate. `direction` is which way is better ("higher",
    "lower", or "" where the policy holds the metric to no floor or ceiling); `verdict` says what the change is:
    "better", "worse", "same", "changed" (no direction), or "" (not two numbers)."""

    key: str
    production: str
    candidate: str
    delta: str
    direction: str
    verdict: str
    threshold: str


@dataclass(frozen=True)
class InputRow:
    """One input dataset version of either run, and which of the two read it."""

    name: str
    number: int
    in_production: bool
    in_candidate: bool


@dataclass(frozen=True)
class Side:
    version: ModelVersion
    run: Run | None  # None when it has no run, or the user may not read it
    hidden_inputs: int


@dataclass(frozen=True)
class Comparison:
    """The candidate beside the model's production version (None when no version the user may see serves, or the
    candidate is the one serving)."""

    candidate: Side
    production: Side | None
    metrics: list[MetricRow]
    parameters: list[DiffRow]  # only those that differ
    parameters_same: int
    inputs: list[InputRow]
    diff_url: str | None


def _metric_row(key: str, production: object, candidate: object, direction: str, threshold: str) -> MetricRow:
    delta, verdict = "", ""
    if is_number(production) and is_number(candidate):
        change = candidate - production
        delta = f"{change:+.6g}" if change else "0"
        if not change:
            verdict = "same"
        elif not direction:
            verdict = "changed"
        else:
            verdict = "better" if (change > 0) == (direction == "higher") else "worse"
    return MetricRow(key, shown(production), shown(candidate), delta, direction, verdict, threshold)


def _metric_rows(production: dict, candidate: dict, policy: PromotionPolicy, declared: dict) -> list[MetricRow]:
    """Every metric either run recorded or the policy names, judged by the direction the model declares for it
    (`declared`), else the one the policy's thresholds give."""
    thresholds = policy.metric_thresholds or []
    directions = metric_directions(thresholds) | declared
    needs: dict[str, list[str]] = {}
    for threshold in thresholds:
        needs.setdefault(threshold["metric"], []).append(f"{threshold['operator']} {threshold['value']}")
    keys = sorted(set(production) | set(candidate) | set(needs))
    return [
        _metric_row(
            key, production.get(key), candidate.get(key), directions.get(key, ""), " and ".join(needs.get(key, []))
        )
        for key in keys
    ]


def _inputs(production_run: Run | None, candidate_run: Run | None, user) -> tuple[list[InputRow], dict[int, int]]:
    """The input dataset versions of the two runs (either may be None), those the user may read named, and how many
    each run read that the user may not, by run id. Two queries whatever the number of inputs."""
    run_ids = {run.pk for run in (production_run, candidate_run) if run is not None}
    edges = list(RunDatasetInput.objects.filter(run_id__in=run_ids).select_related("dataset_version__dataset"))
    readable = set(
        DatasetVersion.objects.visible_to(user)
        .filter(pk__in={edge.dataset_version_id for edge in edges})
        .values_list("pk", flat=True)
    )
    read_by: dict[int, set[int]] = {}
    hidden = dict.fromkeys(run_ids, 0)
    versions: dict[int, DatasetVersion] = {}
    for edge in edges:
        if edge.dataset_version_id in readable:
            versions[edge.dataset_version_id] = edge.dataset_version
            read_by.setdefault(edge.dataset_version_id, set()).add(edge.run_id)
        else:
            hidden[edge.run_id] += 1
    rows = [
        InputRow(
            name=version.dataset.name,
            number=version.number,
            in_production=production_run is not None and production_run.pk in read_by[pk],
            in_candidate=candidate_run is not None and candidate_run.pk in read_by[pk],
        )
        for pk, version in sorted(versions.items(), key=lambda item: (item[1].dataset.name, item[1].number))
    ]
    return rows, hidden


def promotion_comparison(promotion: PromotionRequest, policy: PromotionPolicy, user) -> Comparison:
    """What approving `promotion` changes, as `user` may see it, in a constant number of queries: the production
    version, the runs the user may read, the input datasets (two)."""
    candidate = promotion.model_version
    production = (
        ModelVersion.objects.visible_to(user)
        .filter(registered_model_id=candidate.registered_model_id, stage=Stage.PRODUCTION)
        .exclude(pk=candidate.pk)
        .select_related("artifact_version__artifact", "artifact_version__blob", "artifact_version__run")
        .first()
    )
    with_seen_runs([version for version in (production, candidate) if version is not None], user)
    base = production.seen_run if production is not None else None
    head = candidate.seen_run
    inputs, hidden = _inputs(base, head, user)
    diff_url = None
    if base is not None and head is not None and base.code_repository.strip() == head.code_repository.strip():
        diff_url = code_compare_url(base.code_repository, base.code_commit, head.code_commit)
    parameters = diff_rows(
        run_field(production, "parameters") if production else {}, run_field(candidate, "parameters")
    )
    return Comparison(
        candidate=Side(candidate, head, hidden.get(head.pk, 0) if head else 0),
        production=Side(production, base, hidden.get(base.pk, 0) if base else 0) if production else None,
        metrics=_metric_rows(
            run_field(production, "metrics") if production else {},
            run_field(candidate, "metrics"),
            policy,
            candidate.registered_model.metric_directions,
        ),
        parameters=[row for row in parameters if row.differs],
        parameters_same=sum(1 for row in parameters if not row.differs),
        inputs=inputs,
        diff_url=diff_url,
    )


@dataclass(frozen=True)
class LeftToDo:
    """What still stands between an open request and its move, in the words a reviewer acts on."""

    approvals_needed: int
    cannot_approve: list[str]
    failing_gates: list[str]


def _left_to_do(promotion: PromotionRequest, standing: selectors.Standing) -> LeftToDo:
    policy = standing.policy
    cannot = [f"{promotion.requested_by.get_username()} (who requested it)"]
    if not policy.creator_may_approve:
        creators = {promotion.model_version.created_by, promotion.model_version.artifact_version.created_by}
        names = sorted(user.get_username() for user in creators if user.pk != promotion.requested_by_id)
        cannot += [f"{name} (who made the version)" for name in names]
    return LeftToDo(
        approvals_needed=max(0, policy.approvals_required - standing.approvals_counted),
        cannot_approve=cannot,
        # A rollback's review confirms a move already made: its gates are kept for the record, they block nothing.
        failing_gates=[gate["gate"] for gate in standing.gates_now if not gate["passed"]]
        if promotion.kind == PromotionRequest.Kind.PROMOTION
        else [],
    )


# A request's page --------------------------------------------------------------------------------------------------


class ApproveForm(forms.Form):
    comment = forms.CharField(
        label="Comment (optional)",
        required=False,
        max_length=promotions.MAX_COMMENT_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class RejectForm(forms.Form):
    comment = forms.CharField(
        label="Why reject it (required)",
        max_length=promotions.MAX_COMMENT_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Say why you reject it: the comment is required."},
    )


@dataclass
class DecisionRights:
    """Which forms the page offers the user, and why not the decision ones. Only what to show: the services
    decide again when a form is posted."""

    approve: bool = False
    reject: bool = False
    why_not: str = ""
    separation_of_duties: bool = False
    withdraw: bool = False
    apply: bool = False


def _decision_rights(user, promotion: PromotionRequest, standing: selectors.Standing) -> DecisionRights:
    """What the services would refuse, asked of them (never decided here), so the page offers only what works."""
    if promotion.state != PromotionRequest.State.OPEN:
        return DecisionRights()
    policy = standing.policy
    approve = promotions.promotion_decision_refusal(promotion, user, "approve", policy=policy)
    reject = promotions.promotion_decision_refusal(promotion, user, "reject", policy=policy)
    rights = DecisionRights(
        approve=approve is None,
        reject=reject is None,
        withdraw=promotions.promotion_withdraw_refusal(promotion, user) is None,
    )
    refusal = approve or reject
    if refusal is not None:
        rights.why_not = refusal.message
        rights.separation_of_duties = refusal.code == "separation_of_duties"
    ready = standing.approvals_counted >= policy.approvals_required and not standing.blocked_by
    rights.apply = ready and promotions.promotion_apply_refusal(promotion, user) is None
    return rights


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Add to the discussion",
        max_length=promotions.MAX_COMMENT_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Write something: the comment is empty."},
    )


def _promotion_queryset(user) -> QuerySet[PromotionRequest]:
    # The gates read the version's bytes, run and model; the standing and the decisions list read every decision
    # with its reviewer; who may not approve names the version's makers; the discussion names its authors: joined
    # or prefetched once, not per gate, decision or comment.
    return (
        selectors.promotion_request_list()
        .visible_to(user)
        .select_related(
            "model_version__artifact_version__artifact",
            "model_version__artifact_version__blob",
            "model_version__artifact_version__run",
            "model_version__artifact_version__created_by",
            "model_version__created_by",
            "model_version__registered_model",
        )
        .prefetch_related(
            Prefetch("decisions", queryset=PromotionDecision.objects.select_related("reviewer")),
            Prefetch("comments", queryset=PromotionComment.objects.select_related("author")),
        )
    )


def _render_promotion(
    request: HttpRequest,
    promotion: PromotionRequest,
    *,
    approve_form: ApproveForm | None = None,
    reject_form: RejectForm | None = None,
    comment_form: CommentForm | None = None,
    status: int = 200,
) -> HttpResponse:
    standing = selectors.promotion_request_standing(promotion)
    return render(
        request,
        "portal/promotions/detail.html",
        {
            "promotion": promotion,
            "standing": standing,
            "policy": standing.policy,
            "comparison": promotion_comparison(promotion, standing.policy, request.user),
            "left": _left_to_do(promotion, standing),
            "rights": _decision_rights(request.user, promotion, standing),
            "approve_form": approve_form or ApproveForm(prefix="approve"),
            "reject_form": reject_form or RejectForm(prefix="reject"),
            "comment_form": comment_form or CommentForm(prefix="comment"),
        },
        status=status,
    )


def _approved_message(result: PromotionRequest) -> str:
    if result.state != PromotionRequest.State.APPROVED:
        return f"Your approval is recorded. Not moved yet: {result.blocked_by}"
    if result.kind == PromotionRequest.Kind.ROLLBACK_REVIEW:
        return "Approved: the emergency rollback is confirmed."
    return f"Approved: {result.model_version} is now in {result.target_stage}."


@login_required
@require_http_methods(["GET", "POST"])
def promotion_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    promotion = get_object_or_404(_promotion_queryset(user), pk=pk)
    if request.method == "GET":
        return _render_promotion(request, promotion)
    action = request.POST.get("action")
    if action in ("approve", "reject") and selectors.decision_needs_step_up(promotion):
        require_step_up(request)  # a decision on production: a fresh authentication first (core/accounts.py)
    try:
        if action == "approve":
            form = ApproveForm(request.POST, prefix="approve")
            if not form.is_valid():
                return _render_promotion(request, promotion, approve_form=form, status=400)
            result = promotions.promotion_approve(
                request=promotion, reviewer=user, comment=form.cleaned_data["comment"]
            )
            messages.success(request, _approved_message(result))
        elif action == "reject":
            form = RejectForm(request.POST, prefix="reject")
            if not form.is_valid():
                return _render_promotion(request, promotion, reject_form=form, status=400)
            promotions.promotion_reject(request=promotion, reviewer=user, comment=form.cleaned_data["comment"])
            messages.success(request, f"Rejected: request #{promotion.pk} is closed.")
        elif action == "comment":
            form = CommentForm(request.POST, prefix="comment")
            if not form.is_valid():
                return _render_promotion(request, promotion, comment_form=form, status=400)
            comment = promotions.promotion_comment_add(request=promotion, author=user, body=form.cleaned_data["body"])
            messages.success(request, "Your comment is added to the discussion.")
            return redirect(f"{promotion_url(promotion)}#comment-{comment.pk}")
        elif action == "withdraw":
            promotions.promotion_withdraw(request=promotion, withdrawn_by=user)
            messages.success(request, f"Withdrawn: request #{promotion.pk} is closed.")
        elif action == "apply":
            result = promotions.promotion_apply(request=promotion, applied_by=user)
            messages.success(request, _approved_message(result))
        else:
            messages.error(request, "Choose approve, reject, comment, withdraw or apply.")
    except DomainError as refusal:
        messages.error(request, refusal.message)
    return redirect("portal:promotion", pk=promotion.pk)


def promotion_url(promotion: PromotionRequest) -> str:
    return reverse("portal:promotion", kwargs={"pk": promotion.pk})


urlpatterns = [
    path("promotions/", promotion_list, name="promotions"),
    path("promotions/<int:pk>/", promotion_detail, name="promotion"),
]
