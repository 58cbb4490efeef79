from django.apps import AppConfig


class PlannerConfig(AppConfig):
    name = "planner"
    verbose_name = "Planner"

    def ready(self):
        # The planner's part of `manage.py generate_history`, told by the ledger's signals.
        from planner import history  # noqa: F401
