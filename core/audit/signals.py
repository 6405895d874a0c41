"""Acts the audit log records that no service performs: logins (Django's auth signals), second factors and
re-authentication (django-allauth's signals) and worker tasks (Celery's task signals, which name the task as the
acting system)."""

from allauth.account.signals import authentication_step_completed
from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
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


# Second factors and step-up (django-allauth) -------------------------------------------------------------------------


def _me(user) -> AuditObject:
    return audit_object(user, label=user.get_username())


@receiver(authentication_step_completed, dispatch_uid="audit_reauthenticated")
def record_reauthentication(sender, request, user, method: str, **kwargs) -> None:
    """Only a re-authentication: the steps of a sign-in are recorded as the sign-in (`user.logged_in`)."""
    if kwargs.get("reauthenticated"):
        audit_record(AuditAction.USER_REAUTHENTICATED, obj=_me(user), actor=user, changes={"method": method})


@receiver(mfa_signals.authenticator_added, dispatch_uid="audit_mfa_added")
def record_mfa_added(sender, request, user, authenticator: Authenticator, **kwargs) -> None:
    audit_record(AuditAction.USER_MFA_ADDED, obj=_me(user), actor=user, changes={"type": authenticator.type})


@receiver(mfa_signals.authenticator_removed, dispatch_uid="audit_mfa_removed")
def record_mfa_removed(sender, request, user, authenticator: Authenticator, **kwargs) -> None:
    audit_record(AuditAction.USER_MFA_REMOVED, obj=_me(user), actor=user, changes={"type": authenticator.type})


@receiver(mfa_signals.authenticator_reset, dispatch_uid="audit_mfa_reset")
def record_mfa_reset(sender, request, user, authenticator: Authenticator, **kwargs) -> None:
    audit_record(AuditAction.USER_MFA_RECOVERY_CODES_REGENERATED, obj=_me(user), actor=user)


@receiver(mfa_signals.authenticator_used, dispatch_uid="audit_mfa_used")
def record_recovery_code_used(sender, request, user, authenticator: Authenticator, **kwargs) -> None:
    """A code from an authenticator app is an ordinary sign-in; a recovery code is worth its own entry (the app may
    be lost, or the codes stolen)."""
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        audit_record(
            AuditAction.USER_MFA_RECOVERY_CODE_USED,
            obj=_me(user),
            actor=user,
            changes={
                "unused_left": len(authenticator.wrap().get_unused_codes()),
                "reauthenticated": bool(kwargs.get("reauthenticated")),
            },
        )


@receiver(mfa_signals.authentication_failed, dispatch_uid="audit_mfa_failed")
def record_mfa_failed(sender, request, user, **kwargs) -> None:
    """Never the code tried. At sign-in the person is not signed in yet: the entry names them as the object and as
    an anonymous actor, as a failed password does; at re-authentication they are the actor."""
    username, reauthentication = user.get_username(), bool(kwargs.get("reauthentication"))
    audit_record(
        AuditAction.USER_MFA_FAILED,
        obj=audit_object(user, label=username),
        actor=user if reauthentication else None,
        anonymous_label=None if reauthentication else username,
        changes={"reauthentication": reauthentication},
    )
