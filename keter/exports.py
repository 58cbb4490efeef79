"""Spreadsheet exports every app shares: CSV streamed in constant memory, XLSX, and the one neutraliser.

A text cell that begins with `=`, `+`, `-` or `@` (or a tab or carriage return, which some spreadsheets
skip before reading a formula) would be run as a formula when the file is opened: a reference typed by a
customer could call out to the network. `neutralise` prefixes those cells with an apostrophe, which every
spreadsheet shows as text; numbers are never touched, so `-120` credits stay a number.
"""

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from operator import itemgetter

from django.db import connection, transaction
from django.http import FileResponse, HttpResponse, StreamingHttpResponse

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset("=+-@\t\r")
CSV_ROWS_PER_CHUNK = 2_000  # ~150 KB of CSV per chunk: few writes, yet a small, constant buffer
XLSX_MAX_ROWS = 1_048_576  # a worksheet's limit, header included: longer exports continue on a new sheet
# What one spreadsheet download may carry. Write-only mode keeps memory flat at any size, but a workbook is
# zipped on disk before the first byte is sent: a million rows would hold a web worker for minutes. Larger
# exports are the CSV's job (streamed as it is read).
XLSX_MAX_EXPORT_ROWS = 100_000
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def neutralise(value):
    """Text a spreadsheet would run as a formula gets a leading apostrophe; anything else is unchanged."""
    if isinstance(value, str) and value[:1] in _FORMULA_FIRST:
        return "'" + value
    return value


def restore(text: str) -> str:
    """Undo `neutralise` on a cell read back from a file this app exported."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def _neutralised(rows: Iterable[Sequence], text_columns: Sequence[int] | None) -> Iterator[Sequence]:
    # Inlined rather than calling neutralise() per cell: a million-row export spends its time here.
    first = _FORMULA_FIRST
    if text_columns is None:
        for row in rows:
            yield ["'" + v if isinstance(v, str) and v[:1] in first else v for v in row]
        return
    picked = itemgetter(*text_columns) if len(text_columns) > 1 else lambda row: (row[text_columns[0]],)
    for row in rows:
        for value in picked(row):
            if value and value[0] in first:  # rare: copy the row and fix its text cells
                row = [neutralise(v) if i in text_columns else v for i, v in enumerate(row)]
                break
        yield row


def csv_stream(
    columns: Sequence[str], rows: Iterable[Sequence], *, text_columns: Sequence[int] | None = None
) -> Iterator[str]:
    """CSV text in chunks of many rows: the header, then the rows with their text cells neutralised.

    Memory stays constant whatever the number of rows, as long as `rows` is itself an iterator (a queryset's
    `.iterator()`, a generator); each chunk is written by the C csv writer into one small buffer. A caller
    that knows which columns hold free text (str or None, the others numbers or the app's own codes) names
    them in `text_columns`, so only those are checked: the difference shows on a million rows.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise(column) for column in columns])
    chunk: list = []
    for row in _neutralised(rows, text_columns):
        chunk.append(row)
        if len(chunk) == CSV_ROWS_PER_CHUNK:
            writer.writerows(chunk)
            chunk.clear()
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    writer.writerows(chunk)
    yield buffer.getvalue()


def csv_response(
    columns: Sequence[str],
    rows: Iterable[Sequence],
    filename: str,
    *,
    text_columns: Sequence[int] | None = None,
) -> StreamingHttpResponse:
    stream = csv_stream(columns, rows, text_columns=text_columns)
    response = StreamingHttpResponse(stream, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _xlsx_cell(value):
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)  # Excel has no time zones: callers pass local times
    return neutralise(value)


class ExportTooLarge(Exception):
    def __init__(self, *, rows: int | None, limit: int):
        self.rows, self.limit = rows, limit
        super().__init__(f"more than {limit:,} rows")


def xlsx_write(
    columns: Sequence[str],
    rows: Iterable[Sequence],
    file,
    *,
    title: str = "Export",
    max_rows: int | None = None,
) -> int:
    """Write the rows to `file` as an XLSX workbook in openpyxl's write-only mode (rows go straight to a
    temporary file, so memory stays flat). Returns the number of data rows written; past `max_rows` it
    stops and raises `ExportTooLarge` (the file is then unusable)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    bold = Font(bold=True)
    sheets = 0
    written = 0
    sheet, sheet_rows = None, XLSX_MAX_ROWS

    for row in rows:
        if max_rows is not None and written == max_rows:
            for unfinished in workbook.worksheets:  # else each sheet's writer fails later, when collected
                unfinished.close()
            raise ExportTooLarge(rows=None, limit=max_rows)
        if sheet_rows == XLSX_MAX_ROWS:
            sheets += 1
            sheet = workbook.create_sheet(title if sheets == 1 else f"{title} ({sheets})")
            header = []
            for column in columns:
                cell = WriteOnlyCell(sheet, value=neutralise(column))
                cell.font = bold
                header.append(cell)
            sheet.append(header)
            sheet_rows = 1
        cells = []
        for value in row:
            value = _xlsx_cell(value)
            if isinstance(value, datetime | date):
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = "yyyy-mm-dd hh:mm:ss" if isinstance(value, datetime) else "yyyy-mm-dd"
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
        sheet_rows += 1
        written += 1
    if sheet is None:  # no rows: still a workbook with its header
        sheet = workbook.create_sheet(title)
        sheet.append([neutralise(column) for column in columns])
    workbook.save(file)
    return written


def xlsx_response(
    columns: Sequence[str],
    rows: Iterable[Sequence],
    filename: str,
    *,
    total: int | None = None,
    csv_url: str = "",
) -> HttpResponse:
    """An XLSX download. The workbook is built in a temporary file (a zip needs its directory at the end,
    so it cannot be streamed as it is made) and then sent from disk in blocks.

    More than `XLSX_MAX_EXPORT_ROWS` rows are refused (422) with a message that points to the CSV download
    (`csv_url`): at once when the caller knows the `total`, else as soon as the limit is passed.
    """
    limit = XLSX_MAX_EXPORT_ROWS
    if total is not None and total > limit:
        return _too_large(ExportTooLarge(rows=total, limit=limit), csv_url)
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes (and so deletes) it once sent
    try:
        xlsx_write(columns, rows, spool, max_rows=limit)
    except ExportTooLarge as too_large:
        spool.close()
        return _too_large(too_large, csv_url)
    spool.seek(0)
    return FileResponse(spool, as_attachment=True, filename=filename, content_type=XLSX_CONTENT_TYPE)


def _too_large(refusal: ExportTooLarge, csv_url: str) -> HttpResponse:
    size = f"{refusal.rows:,} rows" if refusal.rows is not None else f"more than {refusal.limit:,} rows"
    where = f": {csv_url}" if csv_url else "."
    message = (
        f"This export has {size}; a spreadsheet download carries at most {refusal.limit:,}. "
        f"Narrow the dates or filters, or download the same rows as CSV (any size){where}\n"
    )
    return HttpResponse(message, status=422, content_type="text/plain; charset=utf-8")


def in_snapshot(make_rows) -> Iterator:
    """Iterate a read-only export's queries inside one transaction.

    On PostgreSQL a server-side cursor then streams without being materialised (outside a transaction it
    is declared WITH HOLD, which copies the whole result before the first row), and REPEATABLE READ gives
    every query of the export the same snapshot, so totals written at the end agree with the rows written
    before them. On SQLite the export reads as it goes: a transaction there would take the write lock.
    """
    if connection.vendor != "postgresql":
        yield from make_rows()
        return
    ours = not connection.in_atomic_block  # inside a caller's transaction the isolation level is theirs
    with transaction.atomic():
        if ours:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield from make_rows()
