from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings

from keter.accounts.demo import DEMO_PASSWORD, demo_logins, seed_accounts
from ledger.demo import seed_ledger
from planner.catalog import load_catalog
from planner.demo import seed_planner_demo


class Command(BaseCommand):
    help = "Load the demo teams, logins and data (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print the demo logins")

    def handle(self, *args, **options):
        # The demo's approval sends its alerts on commit; demo people have no mailbox worth the noise.
        quiet = override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend")
        with quiet, transaction.atomic():
            teams = seed_accounts()
            seed_ledger(teams)
            load_catalog()
            seed_planner_demo(teams)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {', '.join(t.name for t in teams)}"))
        if not options["quiet_logins"]:
            self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD!r}):")
            for email, role, team in demo_logins():
                self.stdout.write(f"  {email:<24} {role:<10} {team}")
