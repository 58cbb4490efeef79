from django.core.management.base import BaseCommand, CommandError

from ledger.history import HistoryRefused, generate_history


class Command(BaseCommand):
    help = (
        "Write a realistic year of ledger history in bulk (plan grants, top-ups, holds with partial "
        "captures and releases, refunds, expiries, adjustments) for benchmarks and reports. Other apps add "
        "their part by listening to ledger.signals.history_generated. Run ledger_check afterwards to verify."
    )

    def add_arguments(self, parser):
        parser.add_argument("--entries", type=int, required=True, help="How many ledger entries (at least)")
        parser.add_argument(
            "--team-slug",
            action="append",
            dest="team_slugs",
            metavar="SLUG",
            help="A team to fill (created if missing, with the Pro plan); repeat for several. "
            "Default: archive-films",
        )
        parser.add_argument("--seed", type=int, default=1, help="Random seed: the same seed, the same story")
        parser.add_argument("--days", type=int, default=365, help="How far back the history starts")

    def handle(self, *args, **options):
        try:
            # The listeners of ledger.signals (the planner's projects and jobs) write in the same transaction.
            result = generate_history(
                entries=options["entries"],
                team_slugs=options["team_slugs"] or ["archive-films"],
                seed=options["seed"],
                days=options["days"],
                options=options,
            )
        except HistoryRefused as refused:
            raise CommandError(refused.message) from None
        self.stdout.write(result.summary())
