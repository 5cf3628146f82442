"""Export writers: RFC 4180 CSV and streaming XLSX, both formula-injection safe."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils.escape import unescape

from insightdesk.reports.tabular import CsvTableWriter, XlsxTableWriter, cell_text

HEADER = ("id", "subject", "created_at", "empty")
ROWS = [
    (
        uuid.UUID(int=1),
        'comma, "quote" and\r\nline break',
        datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        None,
    ),
    (
        uuid.UUID(int=2),
        '=HYPERLINK("http://evil","click")',
        datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
        None,
    ),
    (uuid.UUID(int=3), "Ünïcødé ✓", datetime(2026, 3, 2, 11, 0, tzinfo=UTC), "x"),
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+49 30 1234", "'+49 30 1234"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("plain = text", "plain = text"),
        (None, ""),
        (42, "42"),
    ],
)
def test_cells_that_would_start_a_formula_are_neutralised(value: object, expected: str) -> None:
    assert cell_text(value) == expected


@pytest.mark.parametrize("bom", [False, True])
def test_csv_is_rfc_4180_and_reads_back(tmp_path: Path, bom: bool) -> None:
    path = tmp_path / "out.csv"
    writer = CsvTableWriter(path, HEADER, bom=bom)
    for row in ROWS:
        writer.write_row(row)
    writer.close()
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") is bom
    assert raw.count(b"\r\n") >= len(ROWS) + 1  # CRLF record ends
    text = raw.decode("utf-8-sig")
    back = list(csv.reader(io.StringIO(text, newline="")))
    assert back[0] == list(HEADER)
    assert back[1:] == [[cell_text(v) for v in row] for row in ROWS]
    assert back[2][1].startswith("'=")


def test_xlsx_reads_back_with_text_cells_only(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    writer = XlsxTableWriter(path, HEADER)
    for row in ROWS:
        writer.write_row(row)
    writer.close()
    sheet = openpyxl.load_workbook(path, read_only=True).active
    assert sheet is not None
    # OOXML escapes a CR in text as _x000D_; openpyxl's read-only reader leaves it escaped
    back = [
        [unescape(c) if c is not None else "" for c in row]
        for row in sheet.iter_rows(values_only=True)
    ]
    assert back[0] == list(HEADER)
    assert back[1:] == [[cell_text(v) for v in row] for row in ROWS]
    formulas = openpyxl.load_workbook(path).active
    assert formulas is not None
    assert all(c.data_type != "f" for row in formulas.iter_rows() for c in row)
