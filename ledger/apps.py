from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Credit ledger"

    def ready(self):
        from ledger.services import ensure_system_accounts

        # The system accounts exist from the first migrate on (and again after a test flush).
        post_migrate.connect(ensure_system_accounts, sender=self, dispatch_uid="ledger_system_accounts")
