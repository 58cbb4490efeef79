import csv
import io
from datetime import UTC, datetime

import openpyxl
import pytest

from keter import exports
from keter.exports import csv_stream, neutralise, restore, xlsx_write

COLUMNS = ["when", "reference", "credits"]


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_text_a_spreadsheet_would_run_as_a_formula_is_neutralised(text):
    assert neutralise(text) == "'" + text
    assert restore(neutralise(text)) == text


@pytest.mark.parametrize("value", ["job:1", "", "a=b", "'quoted", -120, 0, 3.5, None])
def test_anything_else_is_left_as_it_is(value):
    assert neutralise(value) == value


def test_csv_rows_come_back_with_numbers_exact_and_formulas_neutralised():
    rows = [("2026-03-01 10:00:00", "=cmd|' /C calc'!A0", -120), ("2026-03-02 11:00:00", "job:7", 10**15)]
    text = "".join(csv_stream(COLUMNS, iter(rows)))
    read = list(csv.reader(io.StringIO(text)))
    assert read[0] == COLUMNS
    assert read[1] == ["2026-03-01 10:00:00", "'=cmd|' /C calc'!A0", "-120"]
    assert read[2] == ["2026-03-02 11:00:00", "job:7", "1000000000000000"]


def test_named_text_columns_are_the_ones_checked():
    rows = [("-5", "=1+1", -5, None), ("+7", "ok", 7, "@me")]
    text = "".join(csv_stream(["code", "note", "credits", "who"], rows, text_columns=[1, 3]))
    read = list(csv.reader(io.StringIO(text)))[1:]
    assert read == [["-5", "'=1+1", "-5", ""], ["+7", "ok", "7", "'@me"]]
    single = "".join(csv_stream(["note"], [("=x",), ("y",)], text_columns=[0]))
    assert single.splitlines()[1:] == ["'=x", "y"]


def test_csv_is_streamed_in_chunks_of_many_rows(monkeypatch):
    monkeypatch.setattr(exports, "CSV_ROWS_PER_CHUNK", 100)
    chunks = list(csv_stream(COLUMNS, ((f"day {i}", f"ref {i}", i) for i in range(250))))
    assert len(chunks) == 3  # header + 100 rows, 100 rows, the last 50
    assert sum(chunk.count("\r\n") for chunk in chunks) == 251


def test_an_empty_csv_still_has_its_header():
    assert "".join(csv_stream(COLUMNS, [])) == "when,reference,credits\r\n"


def test_xlsx_cells_keep_numbers_dates_and_neutralise_formulas():
    when = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    rows = [(when, "@evil", -120), (when, "+1", 10**15), (when, "plain", 0)]
    file = io.BytesIO()
    assert xlsx_write(COLUMNS, rows, file) == 3
    sheet = openpyxl.load_workbook(io.BytesIO(file.getvalue())).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == tuple(COLUMNS)
    assert values[1] == (datetime(2026, 3, 1, 10, 30), "'@evil", -120)
    assert values[2] == (datetime(2026, 3, 1, 10, 30), "'+1", 10**15)
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_xlsx_continues_on_a_new_sheet_past_a_sheets_row_limit(monkeypatch):
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 3)
    file = io.BytesIO()
    xlsx_write(COLUMNS, [("a", "b", i) for i in range(5)], file, title="Ledger")
    book = openpyxl.load_workbook(io.BytesIO(file.getvalue()))
    assert book.sheetnames == ["Ledger", "Ledger (2)", "Ledger (3)"]
    numbers = [row[2] for sheet in book for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert numbers == [0, 1, 2, 3, 4]
