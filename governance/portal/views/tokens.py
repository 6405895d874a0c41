"""The Tokens page: the signed-in person's API tokens and, for maintainers, those of their projects' service
accounts, each revocable here (a POST with the CSRF token), and a form issuing a token for oneself or for one of
those service accounts. Which tokens a person manages is the token services' rule (governance.access), the same as
the API's list and the admin's. An issued token's secret is in the answer to the POST alone (never stored, never
in a redirect, a message or the session), which the browser is told not to keep."""

from datetime import datetime, time, timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from artifacts.access.roles import Scope
from artifacts.models import Project
from core.errors import DomainError
from governance.access.selectors import service_accounts_manageable_by, tokens_manageable_by
from governance.access.services import MAX_TOKEN_LIFETIME, api_token_issue, api_token_revoke

ME = ""  # the `user` choice meaning the signed-in person


class IssueTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What it is for, e.g. nightly-training.")
    user = forms.ChoiceField(label="For", required=False)
    scope = forms.ChoiceField(choices=Scope.choices, initial=Scope.READ, help_text="The most it may do.")
    project = forms.ModelChoiceField(
        queryset=Project.objects.none(),
        required=False,
        to_field_name="slug",
        empty_label="Every project its user's roles reach",
    )
    expires_on = forms.DateField(
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Required: within 366 days.",
        error_messages={"required": "Choose when the token expires: every token does."},
    )

    def __init__(self, *args, actor, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.accounts = {
            account.user.get_username(): account.user
            for account in service_accounts_manageable_by(actor).filter(user__is_active=True)
        }
        self.fields["user"].choices = [(ME, f"You ({actor.get_username()})")] + [
            (name, f"{name} (service account)") for name in self.accounts
        ]
        self.fields["project"].queryset = Project.objects.visible_to(actor).order_by("slug")
        self.fields["expires_on"].initial = timezone.localdate() + timedelta(days=30)

    def clean_expires_on(self) -> datetime:
        expires = datetime.combine(self.cleaned_data["expires_on"], time.min, tzinfo=timezone.get_current_timezone())
        if not timedelta(0) < expires - timezone.now() <= MAX_TOKEN_LIFETIME:
            raise forms.ValidationError("Choose a day after today and within 366 days.")
        return expires


@login_required
@require_GET
def token_list(request: HttpRequest) -> HttpResponse:
    return _page(request, IssueTokenForm(actor=request.user))


def _page(request: HttpRequest, form: IssueTokenForm, status: int = 200) -> HttpResponse:
    tokens = list(tokens_manageable_by(request.user))
    context = {
        "own": [token for token in tokens if token.user_id == request.user.pk],
        "accounts": [token for token in tokens if token.user_id != request.user.pk],
        "form": form,
    }
    return render(request, "portal/tokens/list.html", context, status=status)


@login_required
@require_POST
@never_cache
def token_issue(request: HttpRequest) -> HttpResponse:
    form = IssueTokenForm(request.POST, actor=request.user)
    if not form.is_valid():
        return _page(request, form, status=400)
    fields = form.cleaned_data
    user = form.accounts[fields["user"]] if fields["user"] else request.user
    try:
        token, plaintext = api_token_issue(
            user=user,
            name=fields["name"],
            lifetime=fields["expires_on"] - timezone.now(),
            scope=fields["scope"],
            project=fields["project"],
            issued_by=request.user,
        )
    except DomainError as error:
        form.add_error(error.field if error.field in form.fields else None, error.message)
        return _page(request, form, status=400)
    return render(request, "portal/tokens/issued.html", {"token": token, "plaintext": plaintext})


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = tokens_manageable_by(request.user).filter(pk=pk).first()
    if token is None:
        raise Http404(f"No token {pk} that you manage.")
    try:
        api_token_revoke(token=token, revoked_by=request.user)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Token {token.prefix}… ({token.name}) revoked: its next request answers 401.")
    return redirect("portal:tokens")


urlpatterns = [
    path("tokens/", token_list, name="tokens"),
    path("tokens/issue/", token_issue, name="token-issue"),
    path("tokens/<int:pk>/revoke/", token_revoke, name="token-revoke"),
]
