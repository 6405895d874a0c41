import re
from base64 import b64decode
from datetime import datetime
from urllib import parse

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import BigIntegerField, Field
from django.utils import timezone
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from core.validators import MAX_ID

WHOLE_NUMBER = re.compile(r"[0-9]{1,20}")


class NewestFirstCursorPagination(CursorPagination):
    """Stable pages under concurrent inserts: the cursor walks the primary key, newest first.

    Query parameters are refused when they are wrong, the way filters are (`{"page_size": ["…"]}`, 400), never
    silently replaced: a client asking for 1,000 rows and given 50 would believe it has read everything.
    """

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    invalid_cursor_message = (
        "This cursor was not made by this server, or was changed: follow a page's `next` or `previous` link as given."
    )

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}, not '{raw[:20]}'."]},
                code="invalid",
            )
        return int(raw)

    def decode_cursor(self, request: Request) -> Cursor | None:
        """A cursor as this server made it, or a 400.

        DRF checks a cursor's offset and direction but hands its position to the database as it comes; a position
        the ordering's field cannot hold (`p=NaN` for an id, in a forged cursor) was never made here, and is refused
        before it reaches a query, where it used to fail as a 500.
        """
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded and not _made_like_ours(encoded):
            raise self.invalid_cursor()
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise self.invalid_cursor() from None
        position = cursor.position if cursor is not None else None
        if position is not None and not _holds(self._position_field(request), position):
            raise self.invalid_cursor()
        return cursor

    def invalid_cursor(self) -> ValidationError:
        return ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}, code="invalid_cursor")

    def _position_field(self, request: Request) -> Field:
        """The model field the cursor's position is a value of: the first ordering field of the view's model (every
        paginated view declares a `queryset`; without one, positions must be ids)."""
        view = (request.parser_context or {}).get("view")
        model = getattr(getattr(view, "queryset", None), "model", None)
        ordering = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
        return model._meta.get_field(ordering.lstrip("-")) if model is not None else BigIntegerField()


def _made_like_ours(encoded: str) -> bool:
    """Whether `encoded` is strict base64 of a query string of the tokens DRF writes (o, r, p). DRF decodes
    leniently: it skips what is not base64 and ignores what is not a token, so `%%%` or `AAAA` read as no cursor at
    all and answered the first page as if the client had asked for it."""
    try:
        text = b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
        tokens = parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:  # binascii.Error and the Unicode errors are ValueErrors
        return False
    return bool(tokens) and {name for name, _ in tokens} <= {"o", "r", "p"}


def _holds(field: Field, position: str) -> bool:
    if "\x00" in position:
        return False
    try:
        value = field.to_python(position)
    except DjangoValidationError:
        return False
    if isinstance(value, datetime):
        return timezone.is_aware(value)
    return not isinstance(value, int) or 0 <= value <= MAX_ID
