"""tools/results_page.py: docs/results.md is generated from the committed result files, each with its provenance."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from helpers import REPO

spec = importlib.util.spec_from_file_location("results_page", REPO / "tools" / "results_page.py")
results_page = sys.modules["results_page"] = importlib.util.module_from_spec(spec)  # dataclasses look it up
spec.loader.exec_module(results_page)


def test_the_committed_page_is_what_the_result_files_say():
    done = subprocess.run([sys.executable, "tools/results_page.py", "--check"], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr


def test_every_committed_result_file_is_on_the_page():
    shown = {r.path for results in results_page.SECTIONS.values() for r in results}
    committed = subprocess.run(["git", "ls-files", "benchmarks/results"], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.split()
    # JSON files are the machine-readable twins of a .txt or .md shown on the page
    assert {p for p in committed if not p.endswith(".json")} == shown


def test_each_block_names_its_file_command_and_provenance():
    page = (REPO / "docs" / "results.md").read_text()
    for results in results_page.SECTIONS.values():
        for r in results:
            text = (REPO / r.path).read_text()
            assert f"`{r.path}`: {results_page.provenance(REPO / r.path, text)}." in page
            assert f"Reproduce: `{r.command}`" in page
            said = results_page.provenance(REPO / r.path, text)
            assert said.startswith("commit ") and all(f"; {field}: " in said
                                                      for field in ("machine", "profile", "date")), (r.path, said)


def test_a_result_file_without_provenance_is_refused_naming_it(tmp_path):
    orphan = tmp_path / "orphan.txt"
    orphan.write_text("speedup 9.99x\n")
    with pytest.raises(SystemExit, match=r"orphan.txt: no 'provenance: commit"):
        results_page.block(results_page.Result(str(orphan), "t", "python x.py"))


def test_the_scripts_named_for_uncommitted_results_exist():
    for script in results_page.UNCOMMITTED.values():
        path = script.split()[-1] if script.startswith("python ") else script
        assert (REPO / path).is_file(), script
