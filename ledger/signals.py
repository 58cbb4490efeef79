"""Signals other apps may listen to; the ledger sends them and never imports its listeners."""

from django.dispatch import Signal

# Sent by `manage.py generate_history` once the ledger's part of the history is written, inside the same
# database transaction (a listener that fails rolls everything back). Arguments: `result` (a
# ledger.history.HistoryResult: the teams, the period covered, the counts) and `options` (the command's).
# The planner adds its projects and jobs here, matching the holds' and captures' opaque references.
history_generated = Signal()
