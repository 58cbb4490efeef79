from datetime import date

from django.core.management.base import BaseCommand, CommandError

from keter.accounts.models import Team
from keter.exports import in_snapshot
from ledger.journal import journal_chunks


class Command(BaseCommand):
    help = (
        "Write the ledger as an accounting journal (beancount: check it with bean-check). One team's "
        "transactions with --team, else every team's; up to and including --until; to --output or stdout."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["beancount"], default="beancount")
        parser.add_argument("--team", metavar="SLUG", help="Only this team's transactions")
        parser.add_argument("--until", metavar="YYYY-MM-DD", help="Stop after this day (reporting time zone)")
        parser.add_argument("--output", metavar="FILE", help="Write to this file instead of stdout")

    def handle(self, *args, **options):
        team = None
        if options["team"]:
            team = Team.objects.filter(slug=options["team"]).first()
            if team is None:
                raise CommandError(f"No team with the slug {options['team']!r}")
        until = None
        if options["until"]:
            try:
                until = date.fromisoformat(options["until"])
            except ValueError:
                raise CommandError(f"--until: {options['until']!r} is not a date like 2026-12-31") from None
        chunks = in_snapshot(lambda: journal_chunks(team=team, until=until))
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as out:
                out.writelines(chunks)
        else:
            for chunk in chunks:
                self.stdout.write(chunk, ending="")
