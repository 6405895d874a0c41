"""Acts the audit log records that no service performs: logins (Django's auth signals) and worker tasks
(Celery's task signals, which name the task as the acting system)."""

from celery.signals import task_postrun, task_prerun
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from core.audit.actions import AuditAction
from core.audit.context import task_finished, task_started
from core.audit.recorder import AuditObject, audit_object, audit_record

task_prerun.connect(task_started, weak=False)
task_postrun.connect(task_finished, weak=False)


@receiver(user_logged_in, dispatch_uid="audit_login")
def record_login(sender, request, user, **kwargs) -> None:
    audit_record(AuditAction.USER_LOGGED_IN, obj=audit_object(user, label=user.get_username()), actor=user)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def record_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(AuditAction.USER_LOGGED_OUT, obj=audit_object(user, label=user.get_username()), actor=user)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def record_failed_login(sender, credentials, request=None, **kwargs) -> None:
    """The attempted username is recorded (never the password: Django already masks it in `credentials`)."""
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        AuditAction.USER_LOGIN_FAILED,
        obj=AuditObject(type="user", id=username, label=username),
        anonymous_label=username or "(no username)",
        changes={"username": username},
    )
