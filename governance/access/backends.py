"""Password sign-in (the portal and the admin), refused to service accounts.

A service account signs in only with its tokens: even if someone gives it a password, this backend neither
authenticates it nor restores a session it would hold (Django's `get_user` asks `user_can_authenticate` too).
"""

from django.contrib.auth.backends import ModelBackend

from governance.access.models import ServiceAccount


class InteractiveLoginBackend(ModelBackend):
    def user_can_authenticate(self, user) -> bool:
        if not super().user_can_authenticate(user):
            return False
        return not ServiceAccount.objects.filter(user_id=user.pk).exists()
