"""How the registry follows what happens to bytes elsewhere (connected in apps.ready)."""

from governance.registry.services.promotions import promotions_follow_blob


def follow_blob(sender, blob, before, **kwargs) -> None:
    """Promotion requests react to their bytes: invalidated when found corrupt, applied once verified if approved."""
    promotions_follow_blob(blob=blob, before=before)
