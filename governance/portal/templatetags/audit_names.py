"""Template helpers for the audit pages: the log's dotted and underscored names, breakable only between words."""

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

#: After each separator of a recorded name (`promotion_request.approved_by_reviewer`): where a line may break.
_SEPARATOR = re.compile(r"([._])")


@register.filter
def breakable(name: object) -> SafeString:
    """`name` escaped, with a <wbr> after each '.' and '_': a narrow column wraps it between its words, never
    inside one (the audit CSS forbids breaks elsewhere), and copying it still gives the name as recorded."""
    return mark_safe(_SEPARATOR.sub(r"\1<wbr>", escape(str(name))))  # noqa: S308 (escaped first; <wbr> added)
