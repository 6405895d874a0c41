"""The portal's writes of its own: the daily e-mail digest of what awaits each person (the inbox page by mail)."""

import logging
from datetime import date

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from governance.portal.models import InboxDigest
from governance.portal.selectors import Awaiting, awaiting

logger = logging.getLogger(__name__)


def _portal_url(path: str) -> str:
    return f"{settings.PROVENANT_PUBLIC_URL}{path}"


def digest_text(user: AbstractBaseUser, waiting: Awaiting) -> tuple[str, str]:
    """The digest's subject and plain-text body: each kind counted, listed, and linked to its portal page."""
    total = waiting.total
    subject = f"Provenant: {total} thing{'s' if total != 1 else ''} await{'' if total != 1 else 's'} you"
    lines = [f"Hello {user.get_username()},", "", "This is what waits for you in Provenant today.", ""]
    if waiting.promotions_count:
        lines.append(f"Promotion requests to approve or reject ({waiting.promotions_count}):")
        for request in waiting.promotions:
            lines.append(
                f"- v{request.model_version.number} of {request.registered_model.name} → {request.target_stage} "
                f"(project {request.registered_model.project.slug}), asked by {request.requested_by.get_username()} "
                f"on {request.requested_at:%Y-%m-%d}: {_portal_url(reverse('portal:promotion', args=[request.pk]))}"
            )
        lines.append("")
    if waiting.review_items_count:
        lines.append(f"Grants to keep or revoke in access reviews ({waiting.review_items_count}):")
        for review in waiting.reviews:
            url = _portal_url(f"{reverse('portal:access-reviews')}?campaign={review.campaign.pk}")
            lines.append(
                f"- {review.campaign.title}: {review.pending} pending, due {review.campaign.due_at:%Y-%m-%d}: {url}"
            )
        lines.append("")
    if waiting.plans_count:
        lines.append(f"Retention plans to review and apply ({waiting.plans_count}):")
        for plan in waiting.plans:
            url = _portal_url(reverse("portal:retention-plan", args=[plan.project.slug, plan.pk]))
            lines.append(
                f"- plan #{plan.pk} of project {plan.project.slug}: {plan.versions_to_delete} version(s) to delete, "
                f"{plan.versions_to_archive} to archive: {url}"
            )
        lines.append("")
    lines.append(f"All of it in one place: {_portal_url(reverse('portal:inbox'))}")
    lines.append("")
    lines.append("You get this once a day while something waits for you, and never when nothing does.")
    return subject, "\n".join(lines)


def inbox_digest_send(*, user: AbstractBaseUser, day: date) -> InboxDigest | None:
    """Send `user` the digest of what awaits them for `day`, and record it; None, sending nothing, when nothing
    waits, the user has no address or is inactive, or their digest of that day was sent already.

    The record is written first and the mail sent inside the same transaction: a mail that fails rolls the record
    back (the next run tries again), and a second run of the same day finds the record, or waits on its row and
    then finds it (the one-a-day constraint), and sends nothing. A process dying between the mail and the commit
    could send it twice; that is the one way, and it is rarer than losing a day's digest would be.
    """
    if not user.is_active or not user.email:
        return None
    if InboxDigest.objects.filter(user=user, day=day).exists():
        return None
    waiting = awaiting(user)
    if not waiting.total:
        return None
    listed = {
        "promotions": [request.pk for request in waiting.promotions],
        "campaigns": {str(review.campaign.pk): review.pending for review in waiting.reviews},
        "plans": [plan.pk for plan in waiting.plans],
    }
    subject, body = digest_text(user, waiting)
    try:
        with transaction.atomic():
            digest = InboxDigest.objects.create(
                user=user, day=day, sent_at=timezone.now(), email=user.email, listed=listed
            )
            send_mail(subject, body, None, [user.email], fail_silently=False)
    except IntegrityError:  # another run sent this day's digest meanwhile
        return None
    return digest


def inbox_digests_send(*, day: date | None = None) -> int:
    """Send every active person with an address their digest for `day` (today, UTC, by default); return how many
    were sent. One person's failure (their mail server refusing, say) is logged and does not stop the others."""
    day = day or timezone.now().date()
    sent = 0
    people = get_user_model().objects.filter(is_active=True).exclude(email="").order_by("pk")
    for user in people.iterator(chunk_size=500):
        try:
            sent += inbox_digest_send(user=user, day=day) is not None
        except Exception:
            logger.exception("The digest of %s to user %s was not sent.", day, user.pk)
    return sent
