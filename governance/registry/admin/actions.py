"""How the registry's admin actions run: a service called on each selected row as the logged-in user, each success
and each refusal reported in the service's words, after asking for a reason first where the act needs one (a
rollback's justification)."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.core import validators
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core.admin import skipped
from core.errors import DomainError


class ReasonForm(forms.Form):
    """The text an act must carry (a rollback's justification), asked for on the page between choosing an action
    and running it."""

    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 5, "cols": 80}), strip=True)

    def __init__(self, *args, label: str, help_text: str, required: bool, max_length: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["text"]
        field.label, field.help_text, field.required, field.max_length = label, help_text, required, max_length
        field.validators.append(validators.MaxLengthValidator(max_length))


class ReasonedActionsMixin:
    """Admin actions that ask for a text first (on templates/admin/registry/action_with_reason.html), then run a
    service on each selected row as the logged-in user, reporting what each did and each refusal's own message."""

    def ask_then_run(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        *,
        action: str,
        title: str,
        submit: str,
        form_kwargs: dict[str, Any],
        run: Callable[[Any, str], str],
    ) -> TemplateResponse | None:
        """Show the form for `action` over `queryset`; once it is posted valid, `run(obj, text)` on each row."""
        confirmed = request.POST.get("confirm") == "yes"
        form = ReasonForm(request.POST if confirmed else None, **form_kwargs)
        if confirmed and form.is_valid():
            self.run_each(request, queryset, lambda obj: run(obj, form.cleaned_data["text"]))
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "submit": submit,
            "action": action,
            "form": form,
            "targets": list(queryset),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/registry/action_with_reason.html", context)

    def run_each(self, request: HttpRequest, queryset: QuerySet, act: Callable[[Any], str]) -> None:
        """`act(obj)` on each row, in its own transaction (the service's): one refusal undoes nothing the others
        did. Each success is said and logged; the refusals are listed, each with the row it concerns."""
        refusals = []
        for obj in queryset:
            try:
                done = act(obj)
            except DomainError as error:
                refusals.append(f"{obj}: {error.message}")
            else:
                self.log_change(request, obj, done)
                self.message_user(request, done, level=messages.SUCCESS)
        if refusals:
            self.message_user(request, skipped(refusals), level=messages.ERROR)
