from django.core.management.base import BaseCommand, CommandError

from ledger.checks import ledger_check


class Command(BaseCommand):
    help = "Verify every ledger invariant; prints a report and exits non-zero on any violation."

    def handle(self, *args, **options):
        report = ledger_check()
        for line in report.lines():
            self.stdout.write(line)
        if not report.ok:
            raise CommandError(f"The ledger breaks {len(report.violations)} invariant(s)")
