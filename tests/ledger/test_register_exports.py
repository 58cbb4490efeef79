import csv
import io
from datetime import timedelta

import openpyxl
import pytest
from django.urls import reverse
from django.utils import timezone

from keter.accounts.roles import Role
from ledger.models import Entry
from ledger.reports import REGISTER_COLUMNS

from .conftest import INJECTED_REFERENCE, NEGATIVE_MEMO


def url(team, name: str) -> str:
    return reverse(name, args=[team.slug])


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    reader = csv.reader(io.StringIO(text))
    assert next(reader) == REGISTER_COLUMNS
    return [dict(zip(REGISTER_COLUMNS, row, strict=True)) for row in reader]


def xlsx_rows(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    rows = sheet.iter_rows(values_only=True)
    assert list(next(rows)) == REGISTER_COLUMNS
    return [dict(zip(REGISTER_COLUMNS, row, strict=True)) for row in rows]


def ledger_entries(team, **filters) -> list[Entry]:
    return list(
        Entry.objects.filter(transaction__team=team, **filters)
        .select_related("transaction__actor", "account")
        .order_by("transaction_id", "id")
    )


def test_the_csv_has_every_entry_of_the_team_with_exact_numbers(client_as, ledger_story):
    rows = csv_rows(client_as(Role.FINANCE).get(url(ledger_story.team, "ledger:register-csv")))
    entries = ledger_entries(ledger_story.team)
    assert len(rows) == len(entries)
    for row, entry in zip(rows, entries, strict=True):
        txn = entry.transaction
        assert row["transaction id"] == str(txn.pk)
        assert row["date"] == timezone.localtime(txn.created_at).strftime("%Y-%m-%d %H:%M:%S")
        assert row["kind"] == txn.kind and row["account"] == entry.account.kind
        assert int(row["credits"]) == entry.credits
        assert row["balance after"] == ("" if entry.balance_after is None else str(entry.balance_after))
        assert row["actor"] == (txn.actor.email if txn.actor else "")
    # Summed back from the file: the team's balances and the ledger's zero sum.
    by_account = {}
    for row in rows:
        by_account[row["account"]] = by_account.get(row["account"], 0) + int(row["credits"])
    assert by_account["available"] == 6_500 and by_account["held"] == 0
    assert sum(by_account.values()) == 0
    assert all(row["transaction id"] != "" for row in rows)


def test_the_xlsx_has_the_same_columns_and_the_same_numbers(client_as, ledger_story):
    client = client_as(Role.OWNER)
    from_csv = csv_rows(client.get(url(ledger_story.team, "ledger:register-csv")))
    from_xlsx = xlsx_rows(client.get(url(ledger_story.team, "ledger:register-xlsx")))
    assert len(from_xlsx) == len(from_csv)
    for x, c in zip(from_xlsx, from_csv, strict=True):
        assert x["date"].strftime("%Y-%m-%d %H:%M:%S") == c["date"]  # a real date in the spreadsheet
        assert isinstance(x["credits"], int) and str(x["credits"]) == c["credits"]
        assert (x["balance after"] if x["balance after"] is not None else "") == (
            int(c["balance after"]) if c["balance after"] else ""
        )
        assert x["transaction id"] == int(c["transaction id"])
        for column in ("kind", "reference", "memo", "account", "actor"):
            assert (x[column] or "") == c[column]


@pytest.mark.parametrize("name", ["ledger:register-csv", "ledger:register-xlsx"])
def test_text_that_would_run_as_a_formula_is_neutralised(client_as, ledger_story, name):
    response = client_as(Role.FINANCE).get(url(ledger_story.team, name))
    rows = csv_rows(response) if name.endswith("csv") else xlsx_rows(response)
    references = {row["reference"] for row in rows}
    memos = {row["memo"] for row in rows}
    assert "'" + INJECTED_REFERENCE in references and INJECTED_REFERENCE not in references
    assert "'@SUM(1+1)" in references
    assert "'" + NEGATIVE_MEMO in memos
    credits = [int(row["credits"]) for row in rows]
    assert min(credits) < 0  # negative numbers stay numbers


def test_the_credits_page_filters_apply_to_both_exports(client_as, ledger_story):
    team, client = ledger_story.team, client_as(Role.FINANCE)
    day = ledger_story.first_day + timedelta(days=1)
    query = {"kind": "capture", "date_from": day.isoformat(), "date_to": day.isoformat(), "q": "job"}
    rows = csv_rows(client.get(url(team, "ledger:register-csv"), query))
    assert {row["reference"] for row in rows} == {"job:1"}
    assert [int(row["credits"]) for row in rows] == [-300, 300]
    assert len(xlsx_rows(client.get(url(team, "ledger:register-xlsx"), query))) == 2
    holds = csv_rows(client.get(url(team, "ledger:register-csv"), {"q": "PROJECT:"}))
    assert {row["reference"] for row in holds} == {"project:1", "project:2", "project:3"}
    response = client.get(url(team, "ledger:register-csv"), query)
    assert f"{team.slug}-ledger-{day.isoformat()}-{day.isoformat()}.csv" in response["Content-Disposition"]


def test_bad_filters_get_a_clear_422(client_as, ledger_story):
    response = client_as(Role.FINANCE).get(
        url(ledger_story.team, "ledger:register-csv"), {"date_from": "soon"}
    )
    assert response.status_code == 422
    assert "Enter a date like 2026-12-31" in response.content.decode()


def test_another_teams_entries_never_appear(client_as, ledger_story):
    rows = csv_rows(client_as(Role.FINANCE).get(url(ledger_story.team, "ledger:register-csv")))
    assert "plan:standard:story" not in {row["reference"] for row in rows}


def test_the_credits_page_links_its_filters_to_the_exports(client_as, ledger_story):
    page = client_as(Role.FINANCE).get(url(ledger_story.team, "ledger:credits"), {"kind": "capture"})
    html = page.content.decode()
    assert f'href="{url(ledger_story.team, "ledger:register-csv")}?kind=capture"' in html
    assert f'href="{url(ledger_story.team, "ledger:register-xlsx")}?kind=capture"' in html
    assert f'href="{url(ledger_story.team, "ledger:journal")}"' in html
