from ledger.management.commands._sweep import SweepCommand
from ledger.services import ledger_expire_holds


class Command(SweepCommand):
    help = "Time out pending holds past their expiry, releasing what they keep (safe to run again)."

    def handle(self, *args, **options):
        expired = ledger_expire_holds(now=self.moment(options))
        self.stdout.write(f"Timed out {expired} hold(s).")
