import re

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from artifacts.validators import MAX_ID

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

        DRF checks a cursor's offset and direction but passes its position to the database as it comes; every
        ordering here is by an integer key (`id`, the audit log's `seq`), so a position that is no such integer
        (`p=NaN` in a forged cursor) was never ours and is refused before it reaches a query.
        """
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise self.invalid_cursor() from None
        if cursor is not None and cursor.position is not None and not _is_key(cursor.position):
            raise self.invalid_cursor()
        return cursor

    def invalid_cursor(self) -> ValidationError:
        return ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}, code="invalid_cursor")


def _is_key(position: str) -> bool:
    return bool(WHOLE_NUMBER.fullmatch(position)) and int(position) <= MAX_ID
