from django.core.management.base import BaseCommand

from keter.accounts.roles import matrix_markdown


class Command(BaseCommand):
    help = "Print the permission matrix (which role may do what) as a Markdown table."

    def handle(self, *args, **options):
        self.stdout.write(matrix_markdown())
