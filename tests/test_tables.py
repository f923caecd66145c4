"""Declared results tables: rows and columns from a record's keys, its config or a fixed list;
a cell per path; blanks, dropped rows and columns, means over a level, seed summaries, notes."""

from experiments.tables import MISSING, Items, Note, Table, lookup

RESULTS = {
    "accuracy": {
        "alone": {"p0": {"10": 0.5, "100": 0.7}, "p1": {"10": 0.4, "100": 0.6}},
        "game": {"p0": {"10": 0.6, "100": 0.8}, "p1": {"10": 0.5}},
        "central": {"p0": 0.9, "p1": 0.95},
    },
    "bytes": 12345,
    "reached": None,
}
CONFIG = {"labelled": [10, 100], "players": [{"width": 4}, {"width": 8}]}

GRID = Table(
    row_headers=("player", "L"),
    rows=(
        (
            Items("p", keys="accuracy.central", label="{item} ({value})",
                  label_path="config.players.{index}.width", label_format="d"),
            Items("L", config="labelled"),
        ),
    ),
    columns=(
        Items("m", keys="accuracy", drop=("central",), labels={"game": "the game"},
              path="accuracy.{m}.{p}.{L}"),
        Items("c", fixed=("all labels",), path="accuracy.central.{p}"),
    ),
    notes=(
        Note("Bytes: {}.", ("bytes",), ","),
        Note("Never: {}.", ("absent",)),
        Note("Reached at round {}.", ("reached",), "d"),
    ),
)  # fmt: skip


def test_a_declared_table_lays_out_every_row_and_column_of_the_record():
    text = GRID.render(RESULTS, CONFIG)
    lines = text.splitlines()
    assert lines[0] == "| player | L | alone | the game | all labels |"
    assert "| p0 (4) | 10 | 0.500 | 0.600 | 0.900 |" in lines
    assert "| p1 (8) | 100 | 0.600 |  | 0.950 |" in lines  # a cell the record lacks is blank
    assert len([ln for ln in lines if ln.startswith("| p") and "player" not in ln]) == 4
    # a note whose path is missing is left out; a value that is no number is written out
    assert text.endswith("Bytes: 12,345.\n\nReached at round none.")
    assert "Never" not in text


def test_rows_and_columns_without_any_cell_are_left_out():
    table = Table(
        row_headers=("method",),
        rows=((Items("m", fixed=("alone", "nobody"), path="accuracy.{m}.{p}.10"),),),
        columns=(Items("p", fixed=("p0", "p9")),),
    )
    assert table.render(RESULTS, {}).splitlines() == [
        "| method | p0 |",
        "|---|---|",
        "| alone | 0.500 |",
    ]


def test_a_star_averages_over_a_level_and_several_paths_join_in_one_cell():
    assert lookup(RESULTS, "accuracy.alone.*.10") == 0.45
    assert lookup(RESULTS, "accuracy.nobody.*.10") is MISSING
    table = Table(
        row_headers=("method",),
        rows=((Items("m", fixed=("alone",)),),),
        columns=(Items("x", fixed=("L",), path=("accuracy.{m}.*.10", "accuracy.{m}.*.100")),),
        format=2,
    )
    assert "| alone | 0.45 / 0.65 |" in table.render(RESULTS, {})


def test_a_seed_summary_renders_mean_and_std_in_the_same_cells():
    def stat(m):
        return {"mean": m, "std": 0.01, "values": [m - 0.01, m + 0.01]}

    summary = {"accuracy": {"alone": {"p0": {"10": stat(0.5)}}, "central": {"p0": stat(0.9)}}}
    text = GRID.render(summary, CONFIG)
    assert "| p0 (4) | 10 | 0.500 +- 0.010 | 0.900 +- 0.010 |" in text
    # the keys of a summary leaf (mean, std, values) are never taken for items
    assert "mean" not in Items("x", keys="accuracy.central.p0").items(summary, {})


def test_a_list_of_results_gives_one_row_per_item_labelled_from_the_record():
    res = {"rows": [{"a": 0.25, "f": 1.0}, {"a": 0.5, "f": 2.0}], "baseline": {"f": 3.0}}
    table = Table(
        row_headers=("a",),
        rows=(
            (Items("r", keys="rows", value="rows.{}", label="{value}", label_path="rows.{index}.a",
                   label_format=".2f"),),
            (Items("r", fixed=("baseline",)),),
        ),
        columns=(Items("f", fixed=("f",), path="{r}.f", formats={"f": 1}),),
    )  # fmt: skip
    assert table.render(res, {}).splitlines()[2:] == [
        "| 0.25 | 1.0 |",
        "| 0.50 | 2.0 |",
        "| baseline | 3.0 |",
    ]


def test_lookup_reads_a_key_that_holds_dots_itself():

    node = {"accuracy": {"fedprox_E10_mu0.1": {"player0": {"100": 0.6}}, "game": {"a.b": 1}}}
    assert lookup(node, "accuracy.fedprox_E10_mu0.1.player0.100") == 0.6
    assert lookup(node, "accuracy.game.a.b") == 1
    assert lookup(node, "accuracy.fedprox_E10_mu0.2.player0.100") is MISSING
