from ledger.management.commands._sweep import SweepCommand
from ledger.services import ledger_expire_lots


class Command(SweepCommand):
    help = "Expire lots whose expiry has come: their unreserved credits go to breakage (safe to run again)."

    def handle(self, *args, **options):
        expired = ledger_expire_lots(now=self.moment(options))
        self.stdout.write(f"Expired {expired} lot(s).")
