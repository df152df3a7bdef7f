"""Tables as text that stays a table: one line per row, cells between pipes, header rows above a
`|---|` line, so a chunk and a quote can always find a row's label and its column headers.

    | | Three Months Ended | Three Months Ended | Nine Months Ended |
    | | July 1, 2023 | June 25, 2022 | July 1, 2023 |
    |---|
    | Total net sales | $ 81,797 | $ 82,959 | $ 293,787 |

A header cell that spans columns is repeated in each, so every column reads on its own. PDFs have
no table structure: `layout_to_text` rebuilds it from pypdf's layout-mode text (cells are runs
separated by two or more spaces; numbers are right-aligned under their headers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from statistics import median

SEPARATOR = "|---|"
CAPTION_LINES = 2  # lines just above a table repeated with each piece of it
CAPTION_CHARS = 300

_TABLE_LINE = re.compile(r"^\|.*\|[ \t]*$")
_SEPARATOR_LINE = re.compile(r"^\|[\s:|-]*-[\s:|-]*\|[ \t]*$")
_NUMBER = re.compile(
    r"^(?:[$€£¥]\s*)?\(?[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\)?\s*%?\)?$"
    r"|^(?:[$€£¥]\s*)?[\u2014\u2013-]{1,2}$|^(?:N/?A|NM|n/?m)$"
)
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_CELL = re.compile(r"\S+(?: \S+)*")  # runs of text separated by two or more spaces
_CURRENCY = {"$", "€", "£", "¥"}
_PERIOD = re.compile(
    r"\b(?:ended|ending|months|weeks|quarter|year|as of|january|february|march|april|may|june|"
    r"july|august|september|october|november|december)\b",
    re.IGNORECASE,
)
_GLUED_YEAR = re.compile(r",(?=(?:19|20)\d\d\b)")


def clean_cell(text: str) -> str:
    """One line, single spaces, no pipe (it delimits cells), `July 1,2023` -> `July 1, 2023`."""
    return _GLUED_YEAR.sub(", ", " ".join(text.replace("|", "/").split()))


def row_line(cells: list[str]) -> str:
    return re.sub(r" {2,}", " ", "| " + " | ".join(cells) + " |")


def render_table(header: list[list[str]], rows: list[list[str]]) -> str:
    """The table's text. Header rows are padded to the widest row; empty trailing body cells go."""
    width = max((len(r) for r in header + rows), default=0)
    lines = [row_line([clean_cell(c) for c in r] + [""] * (width - len(r))) for r in header]
    if header:
        lines.append(SEPARATOR)
    for row in rows:
        cells = [clean_cell(c) for c in row]
        while len(cells) > 1 and not cells[-1]:
            cells.pop()
        if any(cells):
            lines.append(row_line(cells))
    return "\n".join(lines)


def is_number(cell: str) -> bool:
    return bool(_NUMBER.match(cell.strip()))


# --- finding tables in text ---------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    text: str
    start: int  # offsets into the text the table was found in
    end: int


@dataclass(frozen=True)
class TableBlock:
    """Where a table sits in a text: caption, header rows (up to the separator), body rows."""

    caption_start: int  # == start when there is no caption
    start: int  # first table line
    header_end: int  # just after the separator line; == start without header rows
    end: int  # end of the last table line
    header: tuple[tuple[Cell, ...], ...]
    rows: tuple[tuple[Cell, ...], ...]
    row_spans: tuple[tuple[int, int], ...]  # (start, end) of each body row's line

    def column_headers(self, column: int) -> list[Cell]:
        """The header cells above one column, top row first, repeats of a spanning cell once."""
        cells: list[Cell] = []
        for row in self.header:
            if (
                column < len(row)
                and row[column].text
                and row[column].text not in [c.text for c in cells]
            ):
                cells.append(row[column])
        return cells


def split_cells(line: str, offset: int) -> tuple[Cell, ...]:
    """The cells of one `| a | b |` line, with offsets (empty cells keep a zero-width place)."""
    cells: list[Cell] = []
    bars = [m.start() for m in re.finditer(r"\|", line)]
    for left, right in pairwise(bars):
        raw = line[left + 1 : right]
        stripped = raw.strip()
        at = left + 1 + (raw.find(stripped) if stripped else 0)
        cells.append(Cell(stripped, offset + at, offset + at + len(stripped)))
    return tuple(cells)


def _lines(text: str) -> list[tuple[int, int]]:
    spans, at = [], 0
    for line in text.split("\n"):
        spans.append((at, at + len(line)))
        at += len(line) + 1
    return spans


def find_tables(text: str) -> list[TableBlock]:
    """The tables in a text written by `render_table` (or any pipe table with leading pipes)."""
    spans = _lines(text)
    blocks: list[TableBlock] = []
    i = 0
    while i < len(spans):
        if not _TABLE_LINE.match(text[spans[i][0] : spans[i][1]]):
            i += 1
            continue
        j = i
        while j < len(spans) and _TABLE_LINE.match(text[spans[j][0] : spans[j][1]]):
            j += 1
        run = spans[i:j]
        separator = next(
            (n for n, (s, e) in enumerate(run) if _SEPARATOR_LINE.match(text[s:e])), None
        )
        header_lines = run[:separator] if separator is not None else []
        body_lines = run[separator + 1 :] if separator is not None else run
        if body_lines:
            start = run[0][0]
            header_end = run[separator][1] + 1 if separator is not None else start
            blocks.append(
                TableBlock(
                    caption_start=_caption_start(text, spans, i),
                    start=start,
                    header_end=min(header_end, body_lines[0][0]),
                    end=run[-1][1],
                    header=tuple(split_cells(text[s:e], s) for s, e in header_lines),
                    rows=tuple(split_cells(text[s:e], s) for s, e in body_lines),
                    row_spans=tuple(body_lines),
                )
            )
        i = j
    return blocks


def _caption_start(text: str, spans: list[tuple[int, int]], first: int) -> int:
    """The start of the (up to two) text lines just above a table, one blank line allowed."""
    start = spans[first][0]
    n, taken, gap = first - 1, 0, False
    while n >= 0 and taken < CAPTION_LINES:
        s, e = spans[n]
        line = text[s:e]
        if not line.strip():
            if gap or taken:
                break
            gap = True
            n -= 1
            continue
        if _TABLE_LINE.match(line) or start - s > CAPTION_CHARS:
            break
        start, taken = s, taken + 1
        n -= 1
    if start == spans[first][0]:
        return start
    # A long paragraph above: keep only its last words, from a word boundary.
    limit = spans[first][0] - CAPTION_CHARS
    if start < limit:
        space = text.find(" ", limit)
        start = space + 1 if 0 <= space < spans[first][0] else spans[first][0]
    return start


# --- PDF layout text to rows ----------------------------------------------------------------------
@dataclass
class _LayoutCell:
    text: str
    start: int
    end: int
    number_start: int  # where the number itself starts (after a currency sign)


def _layout_cells(line: str) -> list[_LayoutCell]:
    cells = [_LayoutCell(m.group(0), m.start(), m.end(), m.start()) for m in _CELL.finditer(line)]
    merged: list[_LayoutCell] = []
    for cell in cells:
        if merged and merged[-1].text in _CURRENCY and is_number(cell.text):
            prev = merged[-1]
            merged[-1] = _LayoutCell(f"{prev.text} {cell.text}", prev.start, cell.end, cell.start)
        elif merged and cell.text in {"%", ")%", "%)"} and is_number(merged[-1].text):
            prev = merged[-1]
            merged[-1] = _LayoutCell(prev.text + cell.text, prev.start, cell.end, prev.number_start)
        else:
            merged.append(cell)
    return merged


def _merge_label(cells: list[_LayoutCell]) -> list[_LayoutCell]:
    """Short text cells between a label and its numbers extend the label ("Municipal securities
    | Level 3 | 104 | ...")."""
    n = 1
    while n < len(cells) and n <= 2 and not is_number(cells[n].text) and len(cells[n].text) <= 30:
        n += 1
    if n == 1 or n >= len(cells) or is_number(cells[0].text) or not is_number(cells[n].text):
        return cells
    label = " ".join(c.text for c in cells[:n])
    return [_LayoutCell(label, cells[0].start, cells[n - 1].end, cells[0].start), *cells[n:]]


def _value_row(cells: list[_LayoutCell]) -> bool:
    """A label (or none) followed only by numbers."""
    if len(cells) < 2:
        return False
    rest = cells[1:] if _has_label(cells) else cells
    if not rest or not all(is_number(c.text) for c in rest):
        return False
    if all(_YEAR.match(c.text) for c in rest):
        return False  # a header of years
    return len(cells[0].text) <= 150


def _label_line(cells: list[_LayoutCell]) -> bool:
    return len(cells) == 1 and len(cells[0].text) <= 80 and not cells[0].text.endswith(".")


def _has_label(cells: list[_LayoutCell]) -> bool:
    """A first cell of text, or a year with amounts after it (a maturity schedule's row)."""
    first = cells[0].text
    return not is_number(first) or (
        bool(_YEAR.match(first)) and len(cells) > 1 and not _YEAR.match(cells[1].text)
    )


def _over_values(cell: _LayoutCell, value_left: int) -> bool:
    """Centred over the value columns (a header is often wider than its numbers)."""
    return (cell.start + cell.end) / 2 >= value_left - 10 and len(cell.text) <= 60


def _header_cells(cells: list[_LayoutCell], value_left: int) -> bool:
    """Short cells over the value columns, after at most one stub cell on the left
    ("Three Months Ended September 30,   2023   2022")."""
    if not cells:
        return False
    rest = cells[1:] if len(cells) > 1 and not _over_values(cells[0], value_left) else cells
    return len(cells[0].text) <= 80 and all(_over_values(c, value_left) for c in rest)


def layout_to_text(layout: str) -> str:
    """pypdf layout-mode text of a page: tables become pipe rows, prose lines single-spaced."""
    lines = layout.replace("\xa0", " ").split("\n")
    cells = [_merge_label(_layout_cells(line)) for line in lines]
    is_row = [_value_row(c) for c in cells]
    out: list[str] = []
    i = 0
    while i < len(lines):
        block = _table_at(lines, cells, is_row, i)
        if block is None:
            out.append(" ".join(lines[i].split()))
            i += 1
            continue
        first, last, header_first = block
        # Lines above the header that were already written as prose stay prose (captions).
        out.extend(" ".join(line.split()) for line in lines[i:header_first])
        out.append(_layout_table(cells[header_first : last + 1], first - header_first))
        i = last + 1
    return "\n".join(out)


def _table_at(
    lines: list[str], cells: list[list[_LayoutCell]], is_row: list[bool], i: int
) -> tuple[int, int, int] | None:
    """(first body line, last body line, first header line) of a table whose header or body
    starts at line i, or None."""
    # Find the first value row at or after i within a short window of header/label lines.
    n = i
    while n < len(lines) and n - i <= 6 and not is_row[n]:
        n += 1
    if n >= len(lines) or not is_row[n]:
        return None
    # The body: value rows, with label lines and single blank lines between them.
    last, k, rows = n, n + 1, 1
    while k < len(lines):
        if is_row[k]:
            last, rows = k, rows + 1
        elif not cells[k] or _label_line(cells[k]):
            # Blank and label lines stay in the table while a value row follows shortly.
            ahead = k + 1
            while ahead < len(lines) and ahead - k <= 9 and not is_row[ahead]:
                if cells[ahead] and not _label_line(cells[ahead]):
                    break
                ahead += 1
            if ahead >= len(lines) or not is_row[ahead] or ahead - k > 9:
                break
        else:
            break
        k += 1
    if rows < 2:
        return None
    value_left = min(
        c.start for r in range(n, last + 1) if is_row[r] for c in cells[r][1:] or cells[r]
    )
    # Label lines ("Net sales:") directly above the first value row belong to the body.
    first, up, labels = n, n - 1, 0
    while up >= i and labels < 3:
        if not cells[up]:
            up -= 1
            continue
        if not _label_line(cells[up]) or cells[up][0].start >= value_left - 12:
            break
        first, up, labels = up, up - 1, labels + 1
    # Header lines: short cells over the value columns, blank lines allowed between.
    header_first, h = first, first - 1
    while h >= i:
        if not cells[h]:
            h -= 1
            continue
        if not _header_cells(cells[h], value_left):
            break
        header_first, h = h, h - 1
    if header_first > i and any(cells[x] for x in range(i, header_first)):
        return None  # prose first: it is written line by line, the table found again later
    return first, last, header_first


def _layout_table(block: list[list[_LayoutCell]], header_count: int) -> str:
    header_lines = [c for c in block[:header_count] if c]
    body = [c for c in block[header_count:] if c]

    def values(line: list[_LayoutCell]) -> list[_LayoutCell]:
        return [c for c in (line[1:] if _has_label(line) else line) if is_number(c.text)]

    width = max(len(values(line)) for line in body)
    full = [values(line) for line in body if len(values(line)) == width]
    # Numbers are right-aligned under their header: a column is where its numbers sit.
    centers = [median((r[col].number_start + r[col].end) / 2 for r in full) for col in range(width)]

    def column(cell: _LayoutCell) -> int:
        middle = (cell.number_start + cell.end) / 2
        return min(range(width), key=lambda c: abs(centers[c] - middle))

    spacing = median(b - a for a, b in pairwise(centers)) if width > 1 else 40.0
    value_left = min(c.start for line in body for c in values(line))
    header: list[list[str]] = []
    for line in header_lines:
        row = [""] * (width + 1)
        if len(line) > 1 and not _over_values(line[0], value_left):
            stub, line = line[0], line[1:]
            if _PERIOD.search(stub.text):  # "Three Months Ended September 30," spans them all
                header.append([""] + [stub.text] * width)
            else:
                row[0] = stub.text
        for col in range(width):
            # A spanning header sits centred over its columns: the nearest centre wins, when it
            # is near enough to be this column's at all.
            nearest = min(line, key=lambda c: abs((c.start + c.end) / 2 - centers[col]))
            reach = (nearest.end - nearest.start) / 2 + 1.5 * spacing
            if abs((nearest.start + nearest.end) / 2 - centers[col]) <= reach:
                row[col + 1] = nearest.text
        header.append(row)
    out_rows: list[list[str]] = []
    for line in body:
        row = [line[0].text if _has_label(line) else ""] + [""] * width
        for cell in values(line):
            at = column(cell) + 1
            row[at] = f"{row[at]} {cell.text}".strip()
        out_rows.append(row)
    return render_table(header, out_rows)
