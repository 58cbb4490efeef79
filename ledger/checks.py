"""Every invariant the ledger promises, checked from the stored rows (`manage.py ledger_check`).

The services keep these true; this module trusts none of them and recomputes each from the entries,
lots, holds and operations. It only reads, so anyone may run it at any time. Each query reads its own
snapshot, so on a busy database a transient mismatch is possible: run it again before worrying.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, F, Q, Sum

from ledger.models import Account, Entry, Hold, HoldLot, Lot, Operation, Transaction

A = Account.Kind


@dataclass
class CheckReport:
    violations: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, message: str) -> None:
        self.violations.append(message)

    def lines(self) -> list[str]:
        counted = ", ".join(f"{n:,} {name}" for name, n in self.counts.items())
        head = f"Ledger check: {counted}."
        if self.ok:
            return [head, "OK: every invariant holds."]
        return [head, f"{len(self.violations)} violation(s):", *(f"  - {v}" for v in self.violations)]


def ledger_check() -> CheckReport:
    report = CheckReport()
    accounts = {account.pk: account for account in Account.objects.all()}
    team_accounts = {(a.team_id, a.kind): a for a in accounts.values() if a.team_id is not None}
    holds = list(Hold.objects.all())
    lots = list(Lot.objects.all())
    report.counts = {
        "transactions": Transaction.objects.count(),
        "entries": Entry.objects.count(),
        "team accounts": len(team_accounts),
        "lots": len(lots),
        "holds": len(holds),
        "operations": Operation.objects.count(),
    }
    _transactions_balance(report)
    _balances_match_entries(report, accounts)
    _holds_are_consistent(report, holds, team_accounts)
    _lots_are_consistent(report, lots, team_accounts)
    _keys_have_one_outcome(report)
    return report


def _transactions_balance(report: CheckReport) -> None:
    unbalanced = (
        Entry.objects.values("transaction_id")
        .annotate(total=Sum("credits"), legs=Count("id"), zeros=Count("id", filter=Q(credits=0)))
        .filter(~Q(total=0) | Q(legs__lt=2) | Q(zeros__gt=0))
    )
    ledger_total = 0  # the sum over every transaction is the sum over the unbalanced ones
    for row in unbalanced:
        ledger_total += row["total"]
        txn = f"transaction #{row['transaction_id']}"
        if row["total"] or row["legs"] < 2:
            report.add(f"{txn}: {row['legs']} entries sum to {row['total']}, not 0")
        if row["zeros"]:
            report.add(f"{txn} has {row['zeros']} entries moving zero credits")
    if ledger_total:
        report.add(f"the whole ledger sums to {ledger_total}, not 0")
    for txn_id in Transaction.objects.filter(entries__isnull=True).values_list("id", flat=True):
        report.add(f"transaction #{txn_id} has no entries")
    foreign = Entry.objects.filter(account__team__isnull=False).exclude(
        account__team_id=F("transaction__team_id")
    )
    for entry_id in foreign.values_list("id", flat=True):
        report.add(f"entry #{entry_id} posts to another team's account than its transaction's")


def _balances_match_entries(report: CheckReport, accounts: dict[int, Account]) -> None:
    # One pass over the entries that carry a running balance (team accounts, and none other should):
    # the chain continues from entry to entry, and it ends at the account's cached balance.
    last: dict[int, int] = {}
    chain = (
        Entry.objects.filter(Q(account__team__isnull=False) | Q(balance_after__isnull=False))
        .order_by("account_id", "id")
        .values_list("id", "account_id", "credits", "balance_after")
    )
    for entry_id, account_id, credits, balance_after in chain.iterator(chunk_size=5000):
        if accounts[account_id].team_id is None:
            report.add(f"entry #{entry_id} records a running balance on a system account")
            continue
        expected = last.get(account_id, 0) + credits
        if balance_after != expected:
            broken = f"balance after {balance_after}, expected {expected}"
            report.add(f"entry #{entry_id}: {broken} (chain broken)")
        if expected < 0:
            report.add(f"entry #{entry_id}: the team balance went negative ({expected})")
        last[account_id] = expected
    for account in accounts.values():
        if account.team_id is None:
            if account.balance != 0:
                report.add(f"system account {account.kind} keeps a running balance ({account.balance})")
            continue
        total = last.get(account.pk, 0)
        if account.balance != total:
            report.add(f"{account}: cached balance {account.balance} but its entries sum to {total}")
        if account.balance < 0:
            report.add(f"{account}: negative balance {account.balance}")


def _holds_are_consistent(report: CheckReport, holds: list[Hold], team_accounts: dict) -> None:
    spread = defaultdict(lambda: defaultdict(int))
    for row in HoldLot.objects.values("hold_id").annotate(
        reserved=Sum("reserved"), captured=Sum("captured"), released=Sum("released"), refunded=Sum("refunded")
    ):
        spread[row["hold_id"]].update(row)
    # What the entries say each hold keeps (held) and spent (usage), in one grouped query.
    by_hold = defaultdict(lambda: defaultdict(int))
    posted = (
        Entry.objects.filter(account__kind__in=[A.HELD, A.USAGE], transaction__hold__isnull=False)
        .values_list("transaction__hold_id", "account__kind")
        .annotate(total=Sum("credits"))
    )
    for hold_id, kind, total in posted:
        by_hold[hold_id][kind] = total
    kept_by_team: dict[int, int] = defaultdict(int)
    for hold in holds:
        name = f"hold #{hold.pk}"
        kept = hold.credits - hold.captured - hold.released
        if hold.is_pending:
            kept_by_team[hold.team_id] += kept
        elif kept != 0:
            report.add(f"{name} is {hold.status} but still keeps {kept} credits")
        if hold.is_pending == (hold.resolved_at is not None):
            report.add(f"{name} is {hold.status} with resolved_at {hold.resolved_at}")
        if min(hold.captured, hold.released, hold.refunded, kept) < 0 or hold.refunded > hold.captured:
            amounts = f"{hold.credits}/{hold.captured}/{hold.released}/{hold.refunded}"
            report.add(f"{name}: impossible amounts (credits/captured/released/refunded) {amounts}")
        for part in ("captured", "released", "refunded"):
            if spread[hold.pk][part] != getattr(hold, part):
                report.add(f"{name}: {part} {getattr(hold, part)} but its lots say {spread[hold.pk][part]}")
        if spread[hold.pk]["reserved"] != kept:
            report.add(f"{name} keeps {kept} credits but reserves {spread[hold.pk]['reserved']} from lots")
        if by_hold[hold.pk][A.HELD] != kept:
            report.add(f"{name} keeps {kept} credits but its held entries sum to {by_hold[hold.pk][A.HELD]}")
        if by_hold[hold.pk][A.USAGE] != hold.captured - hold.refunded:
            report.add(
                f"{name}: captured minus refunded is {hold.captured - hold.refunded} "
                f"but its usage entries sum to {by_hold[hold.pk][A.USAGE]}"
            )
    for (team_id, kind), account in team_accounts.items():
        kept = kept_by_team.get(team_id, 0)
        if kind == A.HELD and account.balance != kept:
            report.add(f"{account}: {account.balance} held but pending holds keep {kept}")


def _lots_are_consistent(report: CheckReport, lots: list[Lot], team_accounts: dict) -> None:
    reserved_by_lot = dict(HoldLot.objects.values_list("lot_id").annotate(total=Sum("reserved")))
    free_by_team: dict[int, int] = defaultdict(int)
    for lot in lots:
        name = f"lot #{lot.pk}"
        if not 0 <= lot.reserved <= lot.remaining <= lot.credits:
            amounts = f"credits {lot.credits}, remaining {lot.remaining}, reserved {lot.reserved}"
            report.add(f"{name}: impossible amounts {amounts}")
        if reserved_by_lot.get(lot.pk, 0) != lot.reserved:
            report.add(f"{name}: reserved {lot.reserved} but holds reserve {reserved_by_lot.get(lot.pk, 0)}")
        if lot.status == Lot.Status.ACTIVE:
            free_by_team[lot.team_id] += lot.free
        elif lot.free != 0:
            report.add(f"{name} expired but {lot.free} unreserved credits were not broken")
    for (team_id, kind), account in team_accounts.items():
        free = free_by_team.get(team_id, 0)
        if kind == A.AVAILABLE and account.balance != free:
            report.add(f"{account}: {account.balance} available but its lots can give {free}")


def _keys_have_one_outcome(report: CheckReport) -> None:
    # A key has one row (a unique constraint); here: every transaction came from exactly one recorded
    # operation under its own key, and a refusal wrote nothing.
    orphans = Transaction.objects.filter(operation__isnull=True).values_list("id", flat=True)
    for txn_id in orphans:
        report.add(f"transaction #{txn_id} was posted by no recorded operation")
    suspicious = Operation.objects.filter(
        Q(transaction__isnull=False, outcome=Operation.Outcome.REFUSED)
        | Q(outcome=Operation.Outcome.REFUSED, hold__isnull=False)
        | Q(outcome=Operation.Outcome.REFUSED, lot__isnull=False)
        | (Q(transaction__isnull=False) & ~Q(transaction__key=F("key")))
    ).values_list("key", "outcome", "transaction__key")
    for key, outcome, txn_key in suspicious:
        if outcome == Operation.Outcome.REFUSED:
            report.add(f"operation {key!r} was refused yet points at what it wrote")
        if txn_key is not None and txn_key != key:
            report.add(f"operation {key!r} points at a transaction posted under another key ({txn_key!r})")
