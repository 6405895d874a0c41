"""Reading what a page answered, for the admin, portal and API tests: the messages it shows, the rows of an admin
list, and the number of database queries a GET cost."""

from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext


def messages_of(response: HttpResponse) -> list[str]:
    """The texts of the messages (django.contrib.messages) the page shows."""
    return [str(message) for message in response.context["messages"]]


def listed(response: HttpResponse) -> list:
    """The objects an admin changelist shows, in its order."""
    return list(response.context["cl"].result_list)


def queries_for(client: Client, url: str) -> int:
    """How many queries answering a GET of `url` took; the answer must be a 200, or the count means nothing."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)
