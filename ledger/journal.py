"""The ledger as a beancount journal, for accountants and for `bean-check`.

One `open` per account that has entries (each team's `Assets:Teams:<Team>:Available` and `...:Held`, and
the system accounts below), the commodity `KCR` (one Keter credit), one transaction per ledger transaction
(its postings are its entries), and at the end one `balance` assertion per team account, dated the day
after the last day exported (beancount checks a balance at the start of its day), equal to the app's
cached balance, or to the balance after the last entry exported when the journal stops at `until`.

Signs: a posting is the entry's signed credits, unchanged, so every transaction sums to zero as in the
ledger. Team accounts are assets and stay positive. Issuing credits takes them from Income (negative, as
income is in beancount), spending puts them in Expenses (usage, breakage: positive), and adjustments are
the owners' equity (a goodwill adjustment makes it negative, a correction downwards positive).

Dates are days in the reporting time zone. The journal is produced as a stream of text chunks, reading
the entries through a server-side cursor, so its memory use does not grow with the ledger.
"""

import re
from collections.abc import Iterator
from datetime import date, timedelta

from django.db.models import Min, OuterRef, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from keter.accounts.models import Team
from ledger.models import Account, Entry, Transaction
from ledger.periods import start_of_day

A = Account.Kind
COMMODITY = "KCR"
SYSTEM_ACCOUNTS = {
    A.ISSUANCE_GRANTS: "Income:Issuance:Grants",
    A.ISSUANCE_PURCHASES: "Income:Issuance:Purchases",
    A.USAGE: "Expenses:Usage",
    A.BREAKAGE: "Expenses:Breakage",
    A.ADJUSTMENTS: "Equity:Adjustments",
}
TEAM_ACCOUNTS = {A.AVAILABLE: "Available", A.HELD: "Held"}
KIND_LABELS = dict(Transaction.Kind.choices)
TRANSACTIONS_PER_CHUNK = 500
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_NEEDS_ESCAPE = re.compile(r'[\\"\x00-\x1f\x7f]')


def beancount_string(text: str) -> str:
    """`text` as a beancount string literal: quotes and backslashes escaped, other controls dropped."""
    return '"' + _NEEDS_ESCAPE.sub(lambda m: _ESCAPES.get(m.group(), " "), text) + '"'


def team_component(team: Team) -> str:
    """A team's slug as a beancount account component: `blue-harbor` -> `Blue-Harbor`."""
    parts = [part[:1].upper() + part[1:] for part in re.split(r"[-_]+", team.slug) if part]
    return "-".join(parts) or f"Team-{team.pk}"


def account_names(teams: list[Team]) -> dict[int, str]:
    """Beancount names of the system accounts and of these teams' accounts, by account id."""
    names, taken = {}, set()
    components = {}
    for team in teams:
        component = team_component(team)
        if component in taken:  # `a_b` and `a-b` would read alike: keep them apart
            component = f"{component}-{team.pk}"
        taken.add(component)
        components[team.pk] = component
    accounts = Account.objects.filter(team__isnull=True) | Account.objects.filter(team__in=teams)
    for account_id, team_id, kind in accounts.values_list("id", "team_id", "kind"):
        if team_id is None:
            names[account_id] = SYSTEM_ACCOUNTS[kind]
        else:
            names[account_id] = f"Assets:Teams:{components[team_id]}:{TEAM_ACCOUNTS[kind]}"
    return names


def journal_chunks(*, team: Team | None = None, until: date | None = None) -> Iterator[str]:
    """The beancount journal of one team (its transactions, with their system legs) or of the whole
    ledger, up to and including the day `until` (default: everything), as chunks of text.

    Iterate it inside `keter.exports.in_snapshot`, so the balances at the end are read from the same
    snapshot as the transactions before them.
    """
    tz = timezone.get_current_timezone()
    entries = Entry.objects.all()
    if team is not None:
        entries = entries.filter(transaction__team=team)
    if until is not None:
        entries = entries.filter(transaction__created_at__lt=start_of_day(until + timedelta(days=1)))
    teams = [team] if team is not None else list(Team.objects.order_by("id"))
    names = account_names(teams)
    first_use = dict(entries.values_list("account_id").annotate(first=Min("transaction__created_at")))
    scope = f"team {team.name} ({team.slug})" if team is not None else "every team"
    lines = [
        f"; Keter Labs credit ledger: {scope}, exported {timezone.localtime():%Y-%m-%d %H:%M %Z}"
        + (f", up to {until:%Y-%m-%d}" if until else "")
        + ".",
        "; Postings are the ledger's signed credits: team accounts are assets, issuance is income (negative),"
        "; usage and breakage are expenses, adjustments are equity. One KCR is one Keter credit.",
        f"option {beancount_string('title')} {beancount_string('Keter Labs credits: ' + scope)}",
        f'option "operating_currency" "{COMMODITY}"',
        "",
    ]
    if first_use:
        first_day = min(first_use.values()).astimezone(tz).date()
        lines += [f"{first_day:%Y-%m-%d} commodity {COMMODITY}", '  name: "Keter credit"', ""]
        for account_id, name in sorted(((i, names[i]) for i in first_use), key=lambda pair: pair[1]):
            lines.append(f"{first_use[account_id].astimezone(tz).date():%Y-%m-%d} open {name} {COMMODITY}")
        lines.append("")
    yield "\n".join(lines) + "\n"

    # The day comes from the database: parsing a million timestamps in Python would double the time.
    rows = entries.annotate(day=TruncDate("transaction__created_at", tzinfo=tz)).order_by(
        "transaction_id", "id"
    )
    rows = rows.values_list(
        "transaction_id",
        "day",
        "transaction__kind",
        "transaction__reference",
        "transaction__memo",
        "transaction__key",
        "transaction__actor__email",
        "transaction__team__name",
        "account_id",
        "credits",
    )
    chunk: list[str] = []
    current, postings, count, last_day = None, [], 0, None
    for txn_id, day, kind, reference, memo, key, actor, team_name, account_id, credits in rows.iterator(
        chunk_size=5_000
    ):
        if current is None or txn_id != current[0]:
            if current is not None:
                chunk.append(_transaction(current, postings))
                count += 1
                if count % TRANSACTIONS_PER_CHUNK == 0:
                    yield "".join(chunk)
                    chunk.clear()
            last_day = day
            current = (txn_id, day, kind, reference, memo, key, actor, team_name)
            postings = []
        postings.append(f"  {names[account_id]}  {credits} {COMMODITY}\n")
    if current is not None:
        chunk.append(_transaction(current, postings))
    yield "".join(chunk)

    if last_day is None:
        return
    checked_on = (until or last_day) + timedelta(days=1)
    team_accounts = Account.objects.filter(id__in=list(first_use), team__isnull=False).order_by("id")
    if until is None:
        balances = team_accounts.values_list("id", "balance")
    else:
        last_entry = entries.filter(account=OuterRef("pk")).order_by("-id").values("balance_after")[:1]
        balances = team_accounts.annotate(closing=Subquery(last_entry)).values_list("id", "closing")
    assertions = [
        f"{checked_on:%Y-%m-%d} balance {names[account_id]}  {balance} {COMMODITY}\n"
        for account_id, balance in balances
    ]
    yield "\n" + "".join(assertions)


def _transaction(head: tuple, postings: list[str]) -> str:
    txn_id, day, kind, reference, memo, key, actor, team_name = head
    narration = " · ".join(part for part in (KIND_LABELS.get(kind, kind), reference, memo) if part)
    meta = [
        f"  ledger-transaction: {beancount_string(str(txn_id))}\n",
        f"  kind: {beancount_string(kind)}\n",
        f"  idempotency-key: {beancount_string(key)}\n",
    ]
    if reference:
        meta.append(f"  reference: {beancount_string(reference)}\n")
    if memo:
        meta.append(f"  memo: {beancount_string(memo)}\n")
    if actor:
        meta.append(f"  actor: {beancount_string(actor)}\n")
    header = f"\n{day:%Y-%m-%d} * {beancount_string(team_name)} {beancount_string(narration)}\n"
    return header + "".join(meta) + "".join(postings)
