"""Results tables declared as data: each experiment's ``TABLE`` says which rows and columns its
record has and where each cell's number lies in the record; ``Table.render`` turns any record of
the experiment (one seed's results, or a seed summary with mean +- std leaves) into markdown.

A cell's place is a dotted path into the results, with the bound items of its row and column in
braces (``"accuracy.{method}.{player}"``); ``*`` in a path averages over every key at that level.
Cells, rows and columns the record lacks are left out, so one declaration serves old and new
records. Torch-free, like every experiment's front module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MISSING = object()


def md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "| " + " | ".join(map(str, columns)) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def fmt(x: Any, digits: int = 3) -> str:
    """A number, or a multi-seed summary ``{"mean", "std", "values"}`` as mean +- std."""
    if isinstance(x, dict):
        return f"{x['mean']:.{digits}f} +- {x['std']:.{digits}f}"
    return f"{x:.{digits}f}"


def number(x: Any) -> float:
    """A number, or a multi-seed summary's mean."""
    return x["mean"] if isinstance(x, dict) else x


def is_stat(x: Any) -> bool:
    """A seed summary's leaf: ``{"mean", "std", "values"}``."""
    return isinstance(x, dict) and {"mean", "std", "values"} <= set(x)


def lookup(node: Any, path: str) -> Any:
    """The value at dotted ``path`` (list items by index; ``*``: the mean over that level's keys
    of what lies below each), or ``MISSING``."""
    if not path:
        return node
    key, _, rest = path.partition(".")
    if key == "*":
        if not isinstance(node, dict):
            return MISSING
        found = [v for child in node.values() if (v := lookup(child, rest)) is not MISSING]
        return sum(map(number, found)) / len(found) if found else MISSING
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        return lookup(node[int(key)], rest)
    if isinstance(node, dict) and key in node:
        return lookup(node[key], rest)
    if isinstance(node, dict):  # a key that holds dots itself (a method named by mu = 0.1)
        parts = path.split(".")
        for i in range(len(parts), 1, -1):
            if (joined := ".".join(parts[:i])) in node:
                return lookup(node[joined], ".".join(parts[i:]))
    return MISSING


Format = int | str  # digits (mean +- std for a seed summary) or a named / Python format


def show(x: Any, how: Format = 3) -> str:
    """A value as a cell: ``int`` digits; ``"len"``; ``"yes/no"``; ``"/"`` (a dict's values
    joined by " / "); ``"pairs:D"`` (a dict as "key value, ...", D digits); else a Python format
    spec applied to the number (a seed summary's mean)."""
    if x is None or isinstance(x, str):  # e.g. a threshold never reached
        return str(x).lower()
    if isinstance(how, int):
        return fmt(x, how)
    if how == "len":
        return str(len(x))
    if how == "yes/no":
        return ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in x.items())
    if how == "/":
        return " / ".join(fmt(v) for v in x.values())
    if how.startswith("pairs:"):
        return ", ".join(f"{k} {fmt(v, int(how[6:]))}" for k, v in x.items())
    return f"{number(x):{how}}"


@dataclass(frozen=True)
class Items:
    """One block of rows or columns: the items it lays out, each bound to ``name`` in the cell
    paths. Items are ``fixed``, or the keys (a list's indices) found at results path ``keys``, or
    the values of config key ``config``; ``drop`` and ``having`` (keep items whose value holds this
    key) filter them. An item is bound as ``value`` formatted with it (``"rows.{}"`` binds a path
    prefix). Its label: ``labels[item]``, else ``label`` formatted with the item and, where
    ``label_path`` is set, the value read there (shown as ``label_format``) (``config.`` paths read the record's config;
    ``{index}`` is the item's position)."""

    name: str
    fixed: tuple[str, ...] = ()
    keys: str | None = None
    config: str | None = None
    drop: tuple[str, ...] = ()
    having: str | None = None
    value: str = "{}"
    labels: Mapping[str, str] = field(default_factory=dict)
    label: str = "{item}"
    label_path: str | None = None
    label_format: Format = 3
    path: str | Sequence[str] | None = None  # this block's cell path(s), several joined by " / "
    formats: Mapping[str, Format] = field(default_factory=dict)  # per item, else the table's

    def items(self, results: Any, config: Mapping) -> list[str]:
        if self.config is not None:
            found = lookup(config, self.config)
            found = [] if found is MISSING else [str(v) for v in found]
        elif self.keys is not None:
            node = lookup(results, self.keys)
            if isinstance(node, list):
                found = [str(i) for i in range(len(node))]
            elif isinstance(node, dict) and not is_stat(node):
                found = list(node)
            else:
                found = []
            if self.having is not None:
                found = [k for k in found if lookup(node[k], self.having) is not MISSING]
        else:
            found = list(self.fixed)
        return [k for k in found if k not in self.drop]

    def labelled(self, results: Any, config: Mapping) -> list[tuple[Items, str, str]]:
        """``(self, item, label)`` of each item the record has."""
        found = self.items(results, config)
        return [
            (self, item, self.label_of(item, i, results, config)) for i, item in enumerate(found)
        ]

    def label_of(self, item: str, index: int, results: Any, config: Mapping) -> str:
        if item in self.labels:
            return self.labels[item]
        extra = ""
        if self.label_path is not None:
            where = self.label_path.format(index=index, item=item)
            source, where = (config, where[7:]) if where.startswith("config.") else (results, where)
            found = lookup(source, where)
            extra = "" if found is MISSING else show(found, self.label_format)
        return self.label.format(item=item, value=extra)


@dataclass(frozen=True)
class Note:
    """A sentence after the table: ``text`` with one ``{}`` per path, left out when a path is
    missing from the record."""

    text: str
    paths: tuple[str, ...]
    format: Format = 3

    def render(self, results: Any) -> str | None:
        values = [lookup(results, p) for p in self.paths]
        if any(v is MISSING or v in ({}, []) for v in values):
            return None
        return self.text.format(*(show(v, self.format) for v in values))


@dataclass(frozen=True)
class Table:
    """Rows: a product of ``Items`` per row block (a label column per ``row_headers`` entry);
    columns:
    ``Items`` blocks, each a run of cells. A cell reads the column block's path, else the row
    block's, formatted with every bound item; cells the record lacks are blank, and rows or
    columns with no cell at all are left out. ``notes`` follow, Notes or further Tables (with
    their ``title``). ``seeds``: how a multi-seed summary renders: ``"table"`` (this table with
    mean +- std cells) or ``"numbers"`` (a row per number of ``seed_keys``)."""

    rows: tuple[tuple[Items, ...], ...]
    columns: tuple[Items, ...]
    row_headers: tuple[str, ...] = ()
    format: Format = 3
    notes: tuple[Note | Table, ...] = ()
    title: str = ""
    seeds: str = "table"
    seed_keys: tuple[str, ...] | None = None

    def render(self, results: Any, config: Mapping) -> str:
        columns = [col for block in self.columns for col in block.labelled(results, config)]
        grid = []
        for blocks in self.rows:
            for combo in _product(blocks, results, config):
                bound = {b.name: b.value.format(item) for b, item, _ in combo}
                cells = [self._cell(results, combo, col, bound) for col in columns]
                if any(c is not None for c in cells):
                    grid.append(([label for *_, label in combo], cells))
        keep = [j for j in range(len(columns)) if any(cells[j] is not None for _, cells in grid)]
        width = len(self.row_headers)  # label columns shown (none: a table of one row)
        headers = [*self.row_headers, *(columns[j][2] for j in keep)]
        body = [
            [*labels[:width], *("" if cells[j] is None else cells[j] for j in keep)]
            for labels, cells in grid
        ]
        parts = [(self.title + "\n\n" if self.title else "") + md_table(headers, body)]
        for note in self.notes:
            text = note.render(results) if isinstance(note, Note) else note.render(results, config)
            if text is not None:
                parts.append(text)
        return "\n\n".join(parts)

    def _cell(self, results: Any, combo: list, column: tuple, bound: dict) -> str | None:
        col_block, col_item, _ = column
        bound = {**bound, col_block.name: col_block.value.format(col_item)}
        block, item = (col_block, col_item)
        if block.path is None:  # the row block declares the path
            block, item = next(((b, i) for b, i, _ in combo if b.path is not None), (None, None))
        if block is None:
            return None
        how = block.formats.get(item, self.format)
        paths = [block.path] if isinstance(block.path, str) else list(block.path)
        found = [v for p in paths if (v := lookup(results, p.format(**bound))) is not MISSING]
        return " / ".join(show(v, how) for v in found) if found else None


def _product(blocks: Sequence[Items], results: Any, config: Mapping) -> list[list]:
    combos: list[list] = [[]]
    for block in blocks:
        combos = [[*c, x] for c in combos for x in block.labelled(results, config)]
    return combos
