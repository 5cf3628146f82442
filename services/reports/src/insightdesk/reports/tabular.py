"""Export files written row by row: CSV (RFC 4180) and XLSX (xlsxwriter's constant-memory mode),
so an export of any length needs the memory of one row.

Cells are formula-injection safe: text starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return gets a leading apostrophe, so a spreadsheet shows it as text instead of running
it (OWASP's CSV-injection advice). Instants are ISO 8601 in UTC; a missing value is empty.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import IO, Any, Protocol

import xlsxwriter

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def cell_text(value: object) -> str:
    """The text of one cell, neutralised against formula injection."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        value = value.value
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


class TableWriter(Protocol):
    rows: int

    def write_row(self, row: Sequence[Any]) -> None: ...

    def close(self) -> None: ...


class CsvTableWriter:
    """RFC 4180: comma separated, CRLF line ends, fields quoted when needed, UTF-8 (with a BOM
    when asked, for spreadsheets that otherwise guess a legacy encoding)."""

    def __init__(self, path: Path, header: Sequence[str], *, bom: bool = False) -> None:
        self._file: IO[str] = path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="")
        self._csv = csv.writer(self._file, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        self._csv.writerow(header)
        self.rows = 0

    def write_row(self, row: Sequence[Any]) -> None:
        self._csv.writerow([cell_text(v) for v in row])
        self.rows += 1

    def close(self) -> None:
        self._file.close()


class XlsxTableWriter:
    """One worksheet, written in constant memory (rows are flushed as they are completed)."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self._book = xlsxwriter.Workbook(
            str(path), {"constant_memory": True, "strings_to_formulas": False}
        )
        self._sheet = self._book.add_worksheet("tickets")
        bold = self._book.add_format({"bold": True})
        for col, name in enumerate(header):
            self._sheet.write_string(0, col, name, bold)
        self.rows = 0

    def write_row(self, row: Sequence[Any]) -> None:
        self.rows += 1
        for col, value in enumerate(row):
            text = cell_text(value)
            if text:
                self._sheet.write_string(self.rows, col, text)

    def close(self) -> None:
        self._book.close()


def open_writer(fmt: str, path: Path, header: Sequence[str], *, bom: bool = False) -> TableWriter:
    if fmt == "csv":
        return CsvTableWriter(path, header, bom=bom)
    if fmt == "xlsx":
        return XlsxTableWriter(path, header)
    raise ValueError(f"unknown export format {fmt!r}")
