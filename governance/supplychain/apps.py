from django.apps import AppConfig


class SupplyChainConfig(AppConfig):
    """What must hold of a file before it goes to production: format scans, model signatures, provenance
    attestations and the vulnerability database the gates read."""

    name = "governance.supplychain"
    label = "supplychain"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from artifacts.signals import blob_state_changed
        from governance.supplychain.receivers import scan_verified_blob

        blob_state_changed.connect(scan_verified_blob, dispatch_uid="supplychain_scan_verified_blob")
        from governance.supplychain import checks  # noqa: F401 (registers the deploy checks)
