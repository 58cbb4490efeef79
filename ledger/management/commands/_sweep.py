"""Shared by the periodic ledger commands: an optional --now, so a run can be replayed for a given moment."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone


class SweepCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("--now", help="Act as if it were this moment (ISO 8601); default: now")

    def moment(self, options) -> datetime:
        if not options.get("now"):
            return timezone.now()
        try:
            moment = datetime.fromisoformat(options["now"])
        except ValueError as error:
            raise CommandError(f"--now: {error}") from error
        return timezone.make_aware(moment) if timezone.is_naive(moment) else moment
