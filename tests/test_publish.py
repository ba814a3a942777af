"""The docs show a suite's own files: jaxvision.research.publish copies them between markers."""

from __future__ import annotations

import json
import os

import pytest

from jaxvision.research import environment, publish, results
from jaxvision.research.results import Column, Row, Table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _suite(workdir, holds=True):
    """A finished suite's record, as research.suite writes it."""
    workdir.mkdir(parents=True, exist_ok=True)
    table = Table("Table 1", (Column("MSE", "validation/mean_squared_error"),), (Row("ae", {}, {"MSE": 0.0191}),))
    table = Table(table.title, table.columns, table.rows, ("- *ae*: 64x64 RGB; adam lr 0.001",))
    record = dict(
        kind="suite",
        title="Suite",
        tables=[table],
        claims=[dict(text="a claim", shown="1 > 0" if holds else "0 > 1", holds=holds, noise="")],
        wall_clock={"seconds": 210.0, "starts": 2},
        computed_with=environment.summary(str(workdir), ["ae", "pca"]),
    )
    results.write(str(workdir), record)


def test_the_marked_block_is_replaced_by_the_runs_record_and_nothing_else(tmp_path):
    _suite(tmp_path / "runs" / "quick")
    (tmp_path / "runs" / "quick" / "results.md").write_text("| ae | 9.9999 |\n")  # prose is never read back
    begin, end = "<!-- results of runs/quick: begin -->", "<!-- results of runs/quick: end -->"
    (tmp_path / "README.md").write_text(f"before\n{begin}\nstale 0.5\n{end}\nafter\n")
    changed = publish.publish(str(tmp_path / "runs" / "quick"), targets=("README.md",), root=str(tmp_path))
    assert changed == ["README.md"]
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("before\n") and text.endswith(f"{end}\nafter\n") and "stale" not in text
    assert "| a claim | 1 > 0 | ✔ |" in text and "| ae | 0.0191 |" in text and "#### Table 1" in text
    assert "9.9999" not in text
    assert "its runs took 3.5 minutes of wall clock over 2 starts" in text and "`runs/quick`" in text
    assert publish.publish(str(tmp_path / "runs" / "quick"), targets=("README.md",), root=str(tmp_path)) == []
    _suite(tmp_path / "runs" / "quick", holds=False)  # a failing claim is shown
    publish.publish(str(tmp_path / "runs" / "quick"), targets=("README.md",), root=str(tmp_path))
    assert "| a claim | 0 > 1 | ✘ |" in (tmp_path / "README.md").read_text()


def test_the_readme_leaves_out_the_settings_that_docs_results_shows(tmp_path):
    _suite(tmp_path / "runs" / "quick")
    marked = "<!-- results of runs/quick: begin -->\n<!-- results of runs/quick: end -->\n"
    for target in publish.TARGETS:
        (tmp_path / target).parent.mkdir(exist_ok=True)
        (tmp_path / target).write_text(marked)
    assert sorted(publish.publish(str(tmp_path / "runs" / "quick"), root=str(tmp_path))) == sorted(publish.TARGETS)
    readme, results = ((tmp_path / target).read_text() for target in ("README.md", os.path.join("docs", "results.md")))
    assert "| ae | 0.0191 |" in readme and "adam lr 0.001" not in readme and "docs/results.md" in readme
    assert "| ae | 0.0191 |" in results and "- *ae*: 64x64 RGB; adam lr 0.001" in results


def test_an_unfinished_suite_or_a_file_without_markers_is_one_sentence(tmp_path):
    (tmp_path / "README.md").write_text("no markers\n")
    _suite(tmp_path / "runs" / "quick")
    with pytest.raises(publish.PublishError, match="has the marker"):
        publish.publish(str(tmp_path / "runs" / "quick"), targets=("README.md",), root=str(tmp_path))
    os.remove(tmp_path / "runs" / "quick" / "results.json")
    with pytest.raises(publish.PublishError, match="results.json does not exist"):
        publish.publish(str(tmp_path / "runs" / "quick"), targets=("README.md",), root=str(tmp_path))
    assert publish.main([str(tmp_path / "nowhere")]) == 2


@pytest.mark.parametrize(
    "run", ["quickstart", "paper_a_heads", "flowers102_cv", "paper_a_finetune", "paper_a_curve", "ecssd"]
)
def test_readme_and_results_mark_where_the_published_runs_go(run):
    for target in publish.TARGETS:
        text = open(os.path.join(ROOT, target)).read()
        begin = text.index(f"<!-- results of runs/{run}: begin -->")
        assert text.index(f"<!-- results of runs/{run}: end -->") > begin, target


def _environment(run_dir, **changed):
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"jax": "0.10.2", "jaxlib": "0.10.2", "backend": "cpu", "device_kind": "cpu", "devices": 1}
    record["XLA_FLAGS"] = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
    (run_dir / "environment.json").write_text(json.dumps({**record, **changed}))


def test_the_published_line_says_what_the_runs_were_computed_with(tmp_path):
    workdir = tmp_path / "runs" / "quick"
    _suite(workdir)
    marked = "<!-- results of runs/quick: begin -->\n<!-- results of runs/quick: end -->\n"
    (tmp_path / "README.md").write_text(marked)
    publish.publish(str(workdir), targets=("README.md",), root=str(tmp_path))
    assert "computed with" not in (tmp_path / "README.md").read_text()  # no run recorded one
    _environment(workdir / "ae")
    _environment(workdir / "pca")
    _suite(workdir)  # the suite's record says what its runs recorded
    publish.publish(str(workdir), targets=("README.md",), root=str(tmp_path))
    one = "jax 0.10.2 (jaxlib 0.10.2) on 1 cpu device(s) (cpu), XLA_FLAGS `--xla_cpu_experimental_ynn_fusion_type"
    assert f"; computed with {one}" in (tmp_path / "README.md").read_text()
    _environment(workdir / "pca", XLA_FLAGS="", host_cpu="AMD EPYC, AVX-512")
    assert environment.summary(str(workdir), ["ae", "pca"]).endswith(
        "; pca: jax 0.10.2 (jaxlib 0.10.2) on 1 cpu device(s) (AMD EPYC, AVX-512), no XLA_FLAGS"
    )
    _environment(workdir / "pca", XLA_FLAGS="", host_cpu="AMD EPYC, AVX-512", onednn_convolutions=True)
    assert environment.summary(str(workdir), ["ae", "pca"]).endswith(
        "no XLA_FLAGS, oneDNN's convolutions (JAXVISION_ONEDNN=1)"
    )
