"""Signals other apps may listen to; the ledger sends them and never imports its listeners."""

from django.dispatch import Signal

# Both are sent by `ledger.history.generate_history` (and so by `manage.py generate_history`) inside its
# database transaction: a listener that fails rolls everything back.
#
# Before anything is written, with `teams` and `options` (the command's). The app that owns the objects the
# history's references stand for (projects, budget approvals, jobs) answers with a
# `ledger.history.HistorySetup`: the first free number of each, so the references and keys are the ones its
# services write (`job:<id>`, `capture:job:<id>`), and the kinds of take to draw. At most one listener
# answers; without an answer the references are opaque labels (`job:h<team>-<n>`).
history_starting = Signal()

# Once the ledger's part of the history is written. Arguments: `result` (a ledger.history.HistoryResult: the
# teams, the period covered, the counts, and the story: `budgets` and `takes`, each with its hold id, amounts,
# moments and outcome) and `options`. The planner writes its projects, scenes and jobs here.
history_generated = Signal()
