from ledger.management.commands._sweep import SweepCommand
from planner.services.queue import queue_sweep


class Command(SweepCommand):
    help = "Send again the generation jobs whose worker was lost, and start queued ones (safe to run again)."

    def handle(self, *args, **options):
        sweep = queue_sweep(now=self.moment(options))
        self.stdout.write(
            f"Sent again {len(sweep.resent)} lost job(s); started {len(sweep.dispatched)} queued job(s)."
        )
