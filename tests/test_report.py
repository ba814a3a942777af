"""Report helpers: the numbers they pick, the tables they render and the pictures they draw."""

import json

import numpy as np
from PIL import Image

from jaxvision.research import figures, tables
from jaxvision.research.results import Row
from jaxvision.train.logs import epoch_series, read_history


def test_history_roundtrip_and_epoch_series(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = [
        {"epoch": 1, "split": "train", "loss": 0.9},
        {"epoch": 1, "split": "train", "loss": 0.8},  # the epoch's last record wins
        {"epoch": 1, "split": "validation", "loss": 1.0, "dice": 0.3},
        {"epoch": 2, "split": "train", "loss": 0.5},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    history = read_history(path)
    assert epoch_series(history, "train", "loss") == ([1, 2], [0.8, 0.5])
    assert epoch_series(history, "validation", "dice") == ([1], [0.3])
    assert read_history(tmp_path / "missing.jsonl") == []


def test_curves_figure_is_written(tmp_path):
    history = [
        {"epoch": e, "split": s, "loss": 1 / e, "acc": e / 10} for e in (1, 2, 3) for s in ("train", "validation")
    ]
    path = figures.plot_curves(history, ["loss", "acc"], tmp_path / "curves.png", title="t")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > im.size[1]  # two panels side by side


def test_overlay_tints_only_the_mask():
    image = np.full((4, 4, 1), 0.5, np.float32)
    mask = np.zeros((4, 4, 1))
    mask[1, 2] = 1
    out = figures.overlay(image, mask, color=(1.0, 0.0, 0.0), alpha=0.5)
    assert out.shape == (4, 4, 3)
    np.testing.assert_allclose(out[1, 2], [0.75, 0.25, 0.25])
    np.testing.assert_allclose(np.delete(out.reshape(16, 3), 6, axis=0), 0.5)


def test_grids_have_one_row_or_column_per_model(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((3, 8, 8, 3))
    p = figures.reconstruction_grid(images, {"ae": images, "pca": images * 0.5}, tmp_path / "r.png")
    seg = figures.segmentation_overlays(
        rng.random((2, 8, 8, 1)), rng.random((2, 8, 8, 1)), {"bce": rng.random((2, 8, 8, 1))}, tmp_path / "s.png"
    )
    with Image.open(p) as a, Image.open(seg) as b:
        assert a.size[1] > a.size[0] * 0.9  # 3 rows for 3 columns
        assert b.size[0] > b.size[1]  # 3 columns for 2 rows


def test_results_table_puts_paper_beside_ours():
    table = tables.results_table(
        "Table 3",
        ["dice", "iou"],
        [Row("bce", {"dice": 0.55, "iou": 0.39}, {"dice": 0.61234, "iou": None})],
        note="embedded dataset",
    )
    lines = table.splitlines()
    assert lines[2] == "| run | dice (paper) | dice (ours) | iou (paper) | iou (ours) |"
    assert lines[4] == "| bce | 0.5500 | 0.6123 | 0.3900 | — |"
    assert table.rstrip().endswith("embedded dataset")
    # a column the paper gives no number in has ours alone
    table = tables.results_table(
        "Table 3", ["dice", "pixel accuracy"], [Row("bce", {"dice": 0.55}, {"dice": 0.6, "pixel accuracy": 0.9})]
    )
    assert table.splitlines()[2] == "| run | dice (paper) | dice (ours) | pixel accuracy |"
    assert table.splitlines()[4] == "| bce | 0.5500 | 0.6000 | 0.9000 |"


def test_claims_are_computed_from_the_numbers_and_a_missing_one_fails():
    from jaxvision.research import claims

    found = {"dice": {"validation/dice": 0.7}, "bce": {"validation/dice": 0.5}, "prior": {"validation/dice": 0.6}}
    table = claims.table(
        [
            dict(text="Dice beats BCE", left=("dice", "validation/dice"), op=">", right=("bce", "validation/dice")),
            dict(
                text="BCE beats the prior", left=("bce", "validation/dice"), op=">", right=("prior", "validation/dice")
            ),
            dict(
                text="twice the best baseline",
                left=("dice", "validation/dice"),
                op=">=",
                factor=2,
                right=[("bce", "validation/dice"), ("prior", "validation/dice")],
            ),
            dict(text="a number nobody measured", left=("dice", "validation/iou"), op=">", right=0.1),
            dict(
                text="a ratio",
                left=("ratio", ("dice", "validation/dice"), ("bce", "validation/dice")),
                op=">",
                right=1.3,
            ),
        ],
        lambda run: found[run],
    )
    rows = [line for line in table.splitlines() if line.startswith("| ") and "claim" not in line]
    assert [row.rsplit("|", 2)[1].strip() for row in rows] == ["✔", "✘", "✘", "✘", "✔"]
    assert "(dice validation/dice 0.7 / bce validation/dice 0.5 = 1.4) > 1.3" in rows[4]
    assert "dice validation/dice 0.7 >= 2 x max(bce validation/dice 0.5, prior validation/dice 0.6)" in rows[2]
    assert "dice validation/iou: not measured" in rows[3] and "2 of 5 claims hold." in table
    found["bce"]["validation/dice"] = 0.65  # the same table from other results: the verdict follows them
    assert (
        claims.table(
            [
                dict(
                    text="BCE beats the prior",
                    left=("bce", "validation/dice"),
                    op=">",
                    right=("prior", "validation/dice"),
                )
            ],
            lambda run: found[run],
        ).count("✔")
        == 1
    )


def test_a_resumed_suite_reports_the_wall_clock_of_all_its_starts(tmp_path):
    from jaxvision.research import suite, wall_clock

    assert wall_clock.recorded(str(tmp_path)) is None  # nothing run yet
    wall_clock.add(str(tmp_path), 3000.0)  # stopped by SIGTERM
    wall_clock.add(str(tmp_path), 966.0)  # resumed to the end
    assert wall_clock.recorded(str(tmp_path)) == {"seconds": 3966.0, "starts": 2}
    record = dict(title="A suite", notes=[], runs=["a", "b"], wall_clock=wall_clock.recorded(str(tmp_path)))
    text = suite._report_markdown(dict(record, claims=[], tables=[], figures=[], curves=[]))
    assert "All 2 runs took 66.1 minutes (wall clock over 2 starts, before this report)." in text
