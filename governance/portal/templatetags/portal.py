"""Template helpers shared by every portal page: navigation, badges, Markdown rendered safely."""

import markdown as markdown_lib
import nh3
from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from governance.portal import context as portal
from governance.portal import links, selectors

register = template.Library()

#: What a model card may keep once rendered: text structure and links; no script, no style, no event handler, no
#: form, and no image (an image by URL would make every reader's browser call a host the card's author chose; the
#: portal loads nothing from elsewhere). nh3 drops the rest and adds rel="noopener noreferrer" to links.
MARKDOWN_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "li", "ol", "p", "pre", "span", "strong", "sub", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
MARKDOWN_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


@register.filter
def render_markdown(text: str) -> SafeString:
    """Markdown to HTML, then sanitised: a model card is written by any contributor and read by reviewers."""
    html = markdown_lib.markdown(text or "", extensions=["tables", "fenced_code", "sane_lists"], output_format="html")
    cleaned = nh3.clean(
        html, tags=MARKDOWN_TAGS, attributes=MARKDOWN_ATTRIBUTES, url_schemes={"http", "https", "mailto"}
    )
    return mark_safe(cleaned)  # noqa: S308 (sanitised by nh3 just above)


@register.simple_tag(takes_context=True)
def nav_link(context, url_name: str, label: str, *, exact: bool = False) -> SafeString:
    """A navigation link, marked as the current page's section for screen readers and the eye."""
    url = reverse(url_name)
    path = context["request"].path
    current = path == url if exact else path.startswith(url)
    return format_html('<a href="{}"{}>{}</a>', url, mark_safe(' aria-current="page"') if current else "", label)


@register.simple_tag(takes_context=True)
def inbox_link(context) -> SafeString:
    """The navigation's "Awaiting me", with how many things wait for the user (one query per page, kept on the
    request: base.html renders the menu twice, for wide screens and for phones)."""
    request = context["request"]
    count = getattr(request, "_portal_awaiting_count", None)
    if count is None:
        count = request._portal_awaiting_count = selectors.awaiting_count(request.user)
    url = reverse("portal:inbox")
    return format_html(
        '<a href="{}"{}>Awaiting me{}</a>',
        url,
        mark_safe(' aria-current="page"') if request.path.startswith(url) else "",
        format_html(' <span class="count">{}</span><span class="visually-hidden"> waiting</span>', count)
        if count
        else "",
    )


@register.simple_tag(takes_context=True)
def user_audits(context) -> bool:
    """Whether the user may open the audit explorer (an auditor somewhere, or a superuser)."""
    request = context.get("request")
    return request is not None and portal.audits(request)


@register.simple_tag
def badge(value: str, label: str | None = None) -> SafeString:
    """A coloured label for a stage, state or verdict; the text says it too, never the colour alone."""
    return format_html('<span class="badge {}">{}</span>', value, label if label is not None else value)


def _query_with(request, **changes: str | None) -> str:
    """The current query string with `changes` applied (None removes a parameter), as "?..." for a link."""
    query = request.GET.copy()
    for name, value in changes.items():
        query.pop(name, None)
        if value is not None:
            query[name] = value
    return "?" + query.urlencode() if query else "?"


@register.simple_tag(takes_context=True)
def sort_header(context, key: str, label: str) -> SafeString:
    """A column header that sorts its table by `key` (governance/portal/tables.py): a link that keeps the page's
    filters and goes back to page 1, and aria-sort on the column the table is sorted by. Where the context has no
    `sorting` allowing `key`, a plain header."""
    sorting = context.get("sorting")
    if sorting is None or key not in sorting.allowed:
        return format_html('<th scope="col">{}</th>', label)
    state = sorting.aria_sort(key)
    href = _query_with(context["request"], sort=sorting.toggled(key), page=None)
    arrow = {"ascending": "▲", "descending": "▼"}.get(state or "", "")
    return format_html(
        '<th scope="col"{}><a class="sort" href="{}">{}<span class="arrow" aria-hidden="true">{}</span></a></th>',
        format_html(' aria-sort="{}"', state) if state else "",
        href,
        label,
        arrow,
    )


@register.simple_tag(takes_context=True)
def page_link(context, number: int) -> str:
    """The address of page `number` of the current list, keeping its filters and sort."""
    return _query_with(context["request"], page=str(number))


@register.simple_tag(takes_context=True)
def audit_object_url(context, entry) -> str | None:
    """The portal page of what an audit entry is about, or None (governance.portal.links.portal_url_for)."""
    user = context["request"].user
    return links.portal_url_for(entry.object_type, entry.object_id, user, project_id=entry.project_id)
