from ledger.management.commands._sweep import SweepCommand
from ledger.services import ledger_grant_plan_credits


class Command(SweepCommand):
    help = "Grant each team its plan credits for the current billing period (safe to run again)."

    def handle(self, *args, **options):
        granted = ledger_grant_plan_credits(now=self.moment(options))
        self.stdout.write(f"Granted plan credits to {granted} team(s).")
