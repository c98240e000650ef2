"""cnn_pruning.pipeline.config: the one schema for params.yaml; every bad setting is named with what is allowed."""

from __future__ import annotations

import copy

import pytest
import yaml

from cnn_pruning.pipeline import config
from helpers import REPO

DEFAULTS = yaml.safe_load((REPO / "params.yaml").read_text())


def with_change(path: str, value, delete: bool = False) -> dict:
    params = copy.deepcopy(DEFAULTS)
    *parents, last = path.split(".")
    node = params
    for p in parents:
        node = node[p]
    if delete:
        del node[last]
    else:
        node[last] = value
    return params


def test_shipped_params_are_valid():
    assert config.problems(DEFAULTS) == []


@pytest.mark.parametrize("path,value,message", [
    ("prune.ration", 0.9, r"prune.ration: unknown key; allowed: methods, ratio, base, options, schedule, steps, "
                          r"prune_until"),
    ("prune.ratio", 1.0, r"prune.ratio = 1.0 is not allowed; expected a number in \[0, 1\)"),
    ("prune.ratio", -0.1, r"prune.ratio = -0.1 is not allowed"),
    ("prune.ratio", "half", r"prune.ratio = 'half' is not allowed"),
    ("prune.ratio", True, r"prune.ratio = True is not allowed"),
    ("train.epochs", 0, r"train.epochs = 0 is not allowed; expected an integer >= 1"),
    ("finetune.batch_size", -8, r"finetune.batch_size = -8 is not allowed; expected an integer >= 1"),
    ("train.epochs", 2.5, r"train.epochs = 2.5 is not allowed"),
    ("train.optimizers", [], r"train.optimizers is empty"),
    ("prune.methods", [], r"prune.methods is empty; list at least one of"),
    ("prune.methods", ["magnitude", "lottery"], r"prune.methods: unknown method 'lottery'; allowed: magnitude, "
                                                r"l2_unit"),
    ("train.optimizers", ["sgd", "adamm"], r"train.optimizers: unknown optimizer 'adamm'; allowed: .*adamax.*sgd"),
    ("train.optimizers", ["sgd", "adamw"], r"train.optimizer_params has no entry for 'adamw'"),
    ("finetune.optimizer", "sgdd", r"finetune.optimizer: unknown optimizer 'sgdd'; allowed: .*adamax.*sgd"),
    ("finetune.optimizer_params", {"lr": 0.1, "betas": [0.9, 0.9]},
     r"finetune.optimizer: optimizer 'sgd': unknown hyperparameter\(s\) \['betas'\]; SGD accepts"),
    ("train.optimizer_params.sgd", {"lr": -1}, r"lr = -1 is not allowed; expected a number > 0"),
    ("prune.base", "rmsprop", r"prune.base = 'rmsprop' is not among the trained optimizers "
                              r"\['adam', 'sgd', 'adamax'\]"),
    ("sweep.ratios", [0.5, 1.2], r"sweep.ratios = \[0.5, 1.2\] is not allowed; expected a non-empty list of numbers "
                                 r"in \[0, 1\)"),
    ("sweep.methods", ["none"], r"sweep.methods: unknown method 'none'"),
    ("evaluate.runtime", "tensorrt", r"evaluate.runtime = 'tensorrt' is not allowed; expected one of 'pytorch', "
                                     r"'torch_compile', 'onnxruntime', 'openvino'"),
    ("data.md5", "xyz", r"data.md5 = 'xyz' is not allowed; expected 32 hex digits or null"),
    ("train.schedule", "linear", r"train.schedule = 'linear' is not allowed; expected one of 'cosine'"),
    ("prune.options.magnitude", {"scope": "everywhere"}, r"prune.options.magnitude: .*scope.*everywhere"),
    ("prune.options.kmeans_shared", {"seeed": 1}, r"prune.options.kmeans_shared: .*seeed"),
    ("prune.options.lottery", {}, r"prune.options: unknown method 'lottery'; allowed: .*, or a named variant "
                                  r"`lottery: \{method: <one of magnitude, .*>, <options>\}`"),
    ("prune.options.l2_unit_all", {"method": "l2"}, r"prune.options.l2_unit_all: prune.options.l2_unit_all.method = "
                                                    r"'l2' is not a pruning method"),
    ("prune.options.l2_unit_all", {"method": "l2_unit", "scope": "stream"},
     r"prune.options.l2_unit_all: pruning method 'l2_unit': option scope='stream' is not allowed; allowed: "
     r"'inner' or 'all'"),
    ("prune.options.l2_unit", {"method": "l2_unit"}, r"'method' names the method of a variant of your own"),
    ("study.methods", ["l2_unit_al"], r"study.methods: unknown method 'l2_unit_al'; allowed: .*l2_unit_all.*, or a "
                                      r"variant of your own defined in prune.options as `l2_unit_al: \{method:"),
    ("study.methods", ["magnitude", "none"], r"study.methods: unknown method 'none'; allowed: magnitude, .*random"),
    ("prune.schedule", "cubic", r"prune.schedule = 'cubic'.*'oneshot' or 'gradual'"),
    ("prune.steps", 0, r"prune.steps = 0.*an integer in \[1, 10000\]"),
    ("prune.prune_until", 0, r"prune.prune_until = 0.*a number in \(0, 1\]"),
    ("prune.prune_until", 1.5, r"prune.prune_until = 1.5.*a number in \(0, 1\]"),
    ("finetune.distill_alpha", 2, r"finetune.distill_alpha = 2.*a number in \[0, 1\]"),
    ("finetune.distill_temperature", 0.0, r"finetune.distill_temperature = 0.0.*a number in \(0, 1000\]"),
    ("study.variants", ["oneshot", "gradual_kd"], r"study.variants = .*distinct names from oneshot, gradual, "
                                                   r"oneshot_distill, gradual_distill"),
    ("study.methods", [], r"study.methods is empty"),
    ("study.ratios", [0.5, 0.5], r"study.ratios = \[0.5, 0.5\] lists a value twice"),
    ("study.ratios", [0.5, 1.0], r"study.ratios = \[0.5, 1.0\] is not allowed; expected a non-empty list of numbers"),
    ("study.seeds", [], r"study.seeds is empty; list at least one seed"),
    ("study.seeds", [0, -1], r"study.seeds = \[0, -1\] is not allowed; expected a list of integers >= 0"),
    ("study.tolerance", -1, r"study.tolerance = -1 is not allowed; expected a number in \[0, 100\]"),
    ("extra", {"a": 1}, r"unknown section 'extra'"),
    ("data.source", "no/such/cifar.tar.gz", r"data.source 'no/such/cifar.tar.gz': .*no/such/cifar.tar.gz "
                                            r"does not exist"),
    ("data.source", "ftp://host/cifar.tar.gz", r"data.source 'ftp://host/cifar.tar.gz': unsupported scheme 'ftp'"),
    ("model.depth", 52, r"model.depth = 52 is not allowed; expected 6n \+ 2 with n >= 1: 20, 32, 44, 56, 110"),
    ("model.depth", "56", r"model.depth = '56' is not allowed"),
    ("model.width", 2, r"model.width: unknown key; allowed: depth"),
    ("data.name", "CIFAR-10", r"data.name = 'CIFAR-10' is not allowed; expected cifar10, cifar100, or a name of "
                              r"your own"),
    ("data.name", "flowers32", r"data.name 'flowers32' has no official download \(known: cifar10, cifar100\); set "
                               r"data.source to your image folder"),
    ("data.md5", "0" * 32, r"data.md5 '0{32}' is not the md5 of the official CIFAR-10 tarball"),
])
def test_bad_settings_are_named_with_what_is_allowed(path, value, message):
    found = config.problems(with_change(path, value))
    assert any(__import__("re").search(message, line) for line in found), found


def test_missing_key_and_section():
    assert any("train.epochs: missing" in p for p in config.problems(with_change("train.epochs", None, delete=True)))
    assert any("missing section 'sweep'" in p for p in config.problems(with_change("sweep", None, delete=True)))


def test_check_raises_with_every_problem_listed():
    params = with_change("prune.ratio", 2)
    params["train"]["epochs"] = 0
    with pytest.raises(config.ConfigError) as err:
        config.check(params)
    assert "prune.ratio = 2" in str(err.value) and "train.epochs = 0" in str(err.value)


def test_command_line_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(DEFAULTS))
    assert config.main([str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(with_change("prune.ratio", 1.5)))
    assert config.main([str(bad)]) == 1
    assert "prune.ratio = 1.5" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- one source of truth

@pytest.mark.parametrize("section", config.SECTIONS)
def test_the_shipped_params_yaml_holds_exactly_the_defaults_the_code_defines(section):
    """A default changed in code but not in params.yaml (or the reverse) fails here: the two cannot drift apart."""
    cls = config.SECTIONS[section]
    assert config.schema.build(cls, DEFAULTS[section]) == cls()


def test_every_registered_method_has_an_options_entry_and_its_defaults_come_from_code():
    assert set(DEFAULTS["prune"]["options"]) == {*config.pruning.METHODS, config.pruning.CONTROL,
                                                 *config.pruning.SCOPE_ALL_VARIANTS}
    assert any("prune.options has no entry for 'l2_unit'; add `l2_unit: {}`" in p
               for p in config.problems(with_change("prune.options.l2_unit", None, delete=True)))
    assert config.problems(with_change("prune.options.magnitude", {"scope": "layer"})) == []
    assert config.pruning.defaults("magnitude")["scope"] == "global"  # from pruning.options, not from params.yaml


def test_a_named_variant_can_be_listed_wherever_a_method_can():
    variant = {"method": "kmeans_channel", "scope": "all", "round_to": 8}
    params = with_change("prune.options.kc8", variant)
    for key in ("prune.methods", "sweep.methods", "study.methods"):
        section, field = key.split(".")
        params[section][field] = [*params[section][field], "kc8"]
    assert config.problems(params) == []


def test_the_control_takes_no_options():
    assert any("prune.options.none = {'seed': 1} is not allowed" in p
               for p in config.problems(with_change("prune.options.none", {"seed": 1})))


def test_the_settings_page_tables_are_the_generated_ones():
    page = (REPO / "docs" / "settings.md").read_text()
    assert config.SETTINGS_BEGIN in page and config.SETTINGS_END in page
    shown = page.split(config.SETTINGS_BEGIN, 1)[1].split(config.SETTINGS_END, 1)[0]
    assert shown == config.settings_markdown(), \
        "stale: run `python -m cnn_pruning.pipeline.config --update docs/settings.md`"


def test_update_rewrites_only_the_settings_block(tmp_path):
    page = tmp_path / "settings.md"
    page.write_text(f"# Title\n\n{config.SETTINGS_BEGIN}old\n{config.SETTINGS_END}\n\n## After\n")
    assert config.main(["--update", str(page)]) == 0
    assert page.read_text() == (f"# Title\n\n{config.SETTINGS_BEGIN}{config.settings_markdown()}{config.SETTINGS_END}"
                                "\n\n## After\n")
    page.write_text("# no block\n")
    with pytest.raises(config.ConfigError, match="no <!-- settings"):
        config.update_page(str(page))


def test_show_prints_every_key_with_its_allowed_values(capsys):
    assert config.main(["--show"]) == 0
    out = capsys.readouterr().out
    for section, cls in config.SECTIONS.items():
        for name, *_ in config.schema.rows(cls):
            assert f"`{section}.{name}`" in out
    assert "| `kmeans_channel.merge` | `true` | False or True |" in out
