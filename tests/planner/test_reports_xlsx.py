"""XLSX downloads of a large period: memory stays flat, and past what a spreadsheet download carries the
answer is a clear message pointing to the CSV, not a worker busy for minutes."""

import io
import tempfile
import tracemalloc
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from keter import exports
from keter.accounts.models import Membership, Team
from keter.accounts.roles import Role
from ledger.models import Entry


@pytest.fixture
def archive(db, client) -> Team:
    """A team with a generated history, and the client signed in as its finance member."""
    call_command("generate_history", "--entries", "400", "--team-slug", "xlsx-archive", stdout=io.StringIO())
    team = Team.objects.get(slug="xlsx-archive")
    client.force_login(Membership.objects.get(team=team, role=Role.FINANCE).user)
    return team


def peak_bytes(rows: int) -> int:
    lines = ((datetime(2026, 3, 1, 12), f"job:{i}", "a memo", i, -i) for i in range(rows))
    tracemalloc.start()
    try:
        with tempfile.TemporaryFile() as file:
            exports.xlsx_write(["when", "reference", "memo", "credits", "balance"], lines, file)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_xlsx_is_written_in_flat_memory_whatever_its_rows():
    peak_bytes(100)  # openpyxl's imports and caches, once
    small, large = peak_bytes(1_000), peak_bytes(10_000)
    assert large < small + 500_000  # ten times the rows, not ten times the memory


def test_a_period_within_the_limit_downloads_as_a_workbook(client, archive, monkeypatch):
    monkeypatch.setattr(exports, "XLSX_MAX_EXPORT_ROWS", 10_000)
    response = client.get(reverse("ledger:register-xlsx", args=[archive.slug]))
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    rows = sum(1 for _ in sheet.iter_rows(min_row=2, values_only=True))
    assert rows == Entry.objects.filter(transaction__team=archive).count()


def test_a_period_beyond_the_limit_is_refused_with_the_way_to_the_csv(client, archive, monkeypatch):
    entries = Entry.objects.filter(transaction__team=archive)
    captures = entries.filter(transaction__kind="capture").count()
    monkeypatch.setattr(exports, "XLSX_MAX_EXPORT_ROWS", captures - 1)
    response = client.get(reverse("ledger:register-xlsx", args=[archive.slug]), {"kind": "capture"})
    assert response.status_code == 422
    message = response.content.decode()
    assert (
        f"This export has {captures:,} rows; a spreadsheet download carries at most {captures - 1:,}"
        in message
    )
    csv_url = reverse("ledger:register-csv", args=[archive.slug]) + "?kind=capture"
    assert f"download the same rows as CSV (any size): http://testserver{csv_url}" in message
    # The link it gives answers with every row.
    lines = b"".join(client.get(csv_url).streaming_content).decode().splitlines()
    assert len(lines) - 1 == captures < entries.count()


def test_rows_past_the_limit_are_refused_even_when_nobody_counted_them(client, archive, monkeypatch):
    monkeypatch.setattr(exports, "XLSX_MAX_EXPORT_ROWS", 2)
    year = {"by": "model", "date_from": (timezone.localdate() - timedelta(days=365)).isoformat()}
    response = client.get(reverse("planner:usage-xlsx", args=[archive.slug]), year)
    assert response.status_code == 422
    assert "more than 2 rows" in response.content.decode()
    assert reverse("planner:usage-csv", args=[archive.slug]) in response.content.decode()
