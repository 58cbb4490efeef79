from django.core.management.base import BaseCommand

from planner.catalog import load_catalog


class Command(BaseCommand):
    help = "Load the seed catalog of video models and their prices (safe to run again)."

    def handle(self, *args, **options):
        models = load_catalog()
        self.stdout.write(self.style.SUCCESS(f"Catalog ready: {len(models)} models"))
