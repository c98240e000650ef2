"""cnn_pruning.pipeline.profiles and `make run PROFILE=...`: the overlays are valid params, `paper` undoes every other
profile, and every value survives Hydra's override grammar (the parser `dvc exp run -S` uses) unchanged."""

from __future__ import annotations

import copy
import os
import subprocess

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from cnn_pruning.core.params import load_params
from cnn_pruning.pipeline import config, profiles
from helpers import REPO, copy_repo, run, tool_env

FOLDER = REPO / "profiles"
SHIPPED = load_params(REPO / "params.yaml")
NAMES = profiles.available(FOLDER)


def overlay(params: dict, flat: dict) -> dict:
    out = copy.deepcopy(params)
    for key, value in flat.items():
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node[part]
        node[last] = value
    return out


def test_the_readme_s_profile_table_lists_exactly_the_profiles_there_are():
    """Each row of the README's profile table (| `name` | ...) is a file in profiles/, and each file has a row."""
    readme = (REPO / "README.md").read_text()
    table = readme.split("Named profiles are params overlays in `profiles/`", 1)[1].split("\n\n", 2)[1]
    rows = [line.split("|")[1].strip().strip("`") for line in table.splitlines()[2:] if line.startswith("| `")]
    assert sorted(rows) == sorted(NAMES) and {"quick", "paper"} <= set(rows), (rows, NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_a_profile_is_valid_params_over_the_shipped_ones(name):
    flat = profiles.load(name, FOLDER)
    assert flat, f"profiles/{name}.yaml changes nothing"
    profiles.check_keys(flat, SHIPPED, name)
    config.check(overlay(SHIPPED, flat))


def test_paper_is_the_shipped_recipe_and_undoes_every_other_profile():
    paper = profiles.load("paper", FOLDER)
    for key, value in paper.items():
        assert overlay(SHIPPED, {key: value}) == SHIPPED, f"paper's {key} = {value!r} is not params.yaml's"
    for name in NAMES:
        missing = set(profiles.load(name, FOLDER)) - set(paper)
        assert not missing, f"profiles/{name}.yaml sets {sorted(missing)}, which `PROFILE=paper` would not reset"


@pytest.mark.parametrize("value", [
    "1234567e9", "1e3", "null", "true", "", "a,b", "[x]", "${x}", "../shared/data/cifar10-jpg.tar.gz",
    "https://example.org/a b/c.tar.gz?x=1&y='2'", "it's \\ odd", "end\\", "a\\'b", "34ec1c07be108afe1a3754f7105b69d6",
    0, 15, 0.9, 1e-4, None, True, False, [0.3, 0.5], ["magnitude", "it's"], {"method": "l2_unit", "scope": "all"}])
def test_every_value_reaches_dvc_exp_run_unchanged(value):
    parsed = OverridesParser.create().parse_overrides([f"k={profiles.hydra_value(value)}"])[0].value()
    assert parsed == value and type(parsed) is type(value)


def test_set_words_are_read_as_params_yaml_reads_them_and_win_over_the_profile():
    got = profiles.overrides("quick", ["train.epochs=2", "data.md5=null", "data.source=../x.tar.gz"], SHIPPED, FOLDER)
    assert "train.epochs=2" in got and "train.epochs=15" not in got
    assert "data.md5=null" in got and "data.source='../x.tar.gz'" in got
    assert "data.train_size=10000" in got


@pytest.mark.parametrize("profile, words, message", [
    ("nope", [], r"PROFILE='nope': no .*profiles/nope.yaml; available: .*quick"),
    (None, ["train.epoch=3"], r"'train.epoch' is not a key of params.yaml; allowed: .*train.epochs"),
    (None, ["epochs"], r"'epochs' is not KEY=VALUE"),
])
def test_a_bad_profile_or_key_is_named_with_what_is_allowed(profile, words, message):
    with pytest.raises(profiles.ProfileError, match=message):
        profiles.overrides(profile, words, SHIPPED, FOLDER)


@pytest.mark.dvc
def test_make_run_profile_applies_the_overlay_through_dvc_exp_run(tmp_path, tiny_source):
    """The Makefile's path end to end (validate only): the quick profile plus a one-off path in params.yaml, typed as
    params.yaml types them; the values stay there (what the README says), and `PROFILE=paper` puts the recipe back."""
    repo = copy_repo(tmp_path / "repo")
    os.symlink(REPO / ".venv", repo / ".venv")  # `make setup` is then up to date: nothing is installed
    env = tool_env()
    proc = run(["make", "run", "PROFILE=quick", f"SET=data.source={tiny_source} data.md5=null", "TARGETS=validate"],
               repo, env=env)
    assert "Running stage 'validate'" in proc.stdout
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["train"]["epochs"] == 15 and params["data"]["train_size"] == 10000
    assert params["study"]["ratios"] == [0.5, 0.9] and params["data"]["source"] == str(tiny_source)
    assert "Estimate for this CPU" in proc.stdout and "ms per training image" in proc.stdout
    run(["make", "run", "PROFILE=paper", "TARGETS=validate"], repo, env=env)
    back = yaml.safe_load((repo / "params.yaml").read_text())
    assert back["train"]["epochs"] == 200 and back["data"]["train_size"] is None
    refused = run(["make", "run", "PROFILE=quik", "TARGETS=validate"], repo, env=env, check=False)
    assert refused.returncode != 0 and "available: paper, quick" in refused.stderr
    assert "Running stage" not in refused.stdout


@pytest.mark.parametrize("text", ["train.epochs=15", "data.source='../x y.tar.gz'", "k='it''s'", 'k="q"',
                                  "k='$HOME'", "k='a\\\\'", "k='!`x`'", "study.ratios=[0.5,0.9]"])
def test_a_printed_override_is_one_shell_word_the_makefile_s_eval_gives_back_unchanged(text):
    """The Makefile evals what main() prints; each override must come out of that as the one word Hydra reads."""
    shell = "eval \"set -- $WORD\"; printf %s \"$#:$1\""
    echoed = subprocess.run(["sh", "-c", shell], env={**os.environ, "WORD": profiles.shell_word(text)},
                            capture_output=True, text=True, check=True).stdout
    assert echoed == f"1:{text}"
