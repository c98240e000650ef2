"""Named profiles: a params overlay per file in profiles/, turned into `dvc exp run -S` overrides.

    python -m cnn_pruning.pipeline.profiles --profile quick data.train_size=5000   # the -S arguments, shell-quoted
    make run PROFILE=quick SET="train.epochs=2"                           # what the Makefile does with them

A profile file has params.yaml's shape, with only the keys it changes. `dvc exp run -S key=value` parses the value
with Hydra's override grammar, where an unquoted URL fails to parse and a string such as `1234567e9` or `1e3`
turns into a float; every string is therefore single-quoted here. One-off `KEY=VALUE` words (the Makefile's SET)
are read as YAML values, as params.yaml would read them, and quoted the same way. Every key must already exist in
params.yaml: a misspelt one is an error naming it and the keys allowed, before DVC starts.

`dvc exp run -S` writes the values into the workspace's params.yaml, so a profile stays applied until reset:
`git checkout params.yaml`, or `make run PROFILE=paper` (the shipped recipe for every key a profile changes).
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import UserError
from ..core.params import flatten, load_params

FOLDER = Path("profiles")


class ProfileError(UserError, ValueError):
    """A profile or override names a key params.yaml does not have, or cannot be read."""


def available(folder: Path = FOLDER) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load(name: str, folder: Path = FOLDER) -> dict[str, Any]:
    """A profile's overrides, flattened to dotted keys."""
    path = folder / f"{name}.yaml"
    if not path.is_file():
        raise ProfileError(f"PROFILE={name!r}: no {path}; available: {', '.join(available(folder)) or 'none'}")
    tree = yaml.safe_load(path.read_text()) or {}
    if not isinstance(tree, dict):
        raise ProfileError(f"{path}: expected params.yaml's shape (a mapping of sections), got {type(tree).__name__}")
    return flatten(tree)


def parse_words(words: list[str]) -> dict[str, Any]:
    """KEY=VALUE words (the Makefile's SET), each value read as YAML reads it in params.yaml."""
    out = {}
    for word in words:
        key, sep, text = word.partition("=")
        if not sep or not key:
            raise ProfileError(f"SET word {word!r} is not KEY=VALUE (e.g. train.epochs=15)")
        try:
            out[key] = yaml.safe_load(text) if text else ""
        except yaml.YAMLError as e:
            raise ProfileError(f"SET {word!r}: the value is not YAML ({e.problem})") from None
    return out


def check_keys(overrides: dict[str, Any], params: dict, origin: str) -> None:
    """Every dotted key must name an existing key of params.yaml: `-S` refuses a new one (Hydra wants `+key=`), and
    a typo would otherwise add a setting nobody reads."""
    for key in overrides:
        if key.startswith(("+", "~")):  # Hydra's "add this key" / "delete this key": passed on as written
            continue
        node: Any = params
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                section = params.get(key.split(".")[0])
                allowed = sorted(flatten(section, key.split(".")[0] + ".")) if isinstance(section, dict) else []
                raise ProfileError(f"{origin}: {key!r} is not a key of params.yaml; allowed: "
                                   f"{', '.join(allowed) if allowed else 'a key under ' + ', '.join(params)}")
            node = node[part]


def hydra_value(value: Any) -> str:
    """A value in Hydra's override grammar, parsed back to exactly `value`: strings always single-quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # Hydra reads a backslash literally except before a quote or the closing quote: double only those.
        escaped = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
        return "'" + re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped) + "'"
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    raise ProfileError(f"cannot pass a {type(value).__name__} ({value!r}) to dvc exp run -S")


def overrides(profile: str | None, words: list[str], params: dict, folder: Path = FOLDER) -> list[str]:
    """`key=value` overrides for `dvc exp run -S`: the profile's first, then the one-off words (which win)."""
    merged: dict[str, Any] = {}
    if profile:
        chosen = load(profile, folder)
        check_keys(chosen, params, str(folder / f"{profile}.yaml"))
        merged.update(chosen)
    extra = parse_words(words)
    check_keys(extra, params, "SET")
    merged.update(extra)
    return [f"{key}={hydra_value(value)}" for key, value in merged.items()]


def shell_word(text: str) -> str:
    """`text` as one shell word, as a person would type it: in double quotes where that suffices (Hydra's single
    quotes inside), else single-quoted."""
    if re.fullmatch(r"[\w@%+=:,./-]+", text):
        return text
    if not re.search(r'["$`\\!]', text):
        return f'"{text}"'
    return shlex.quote(text)


def main(argv: list[str]) -> int:
    profile = None
    if argv[:1] == ["--profile"]:
        if len(argv) < 2:
            print("error: --profile needs a name", file=sys.stderr)
            return 2
        profile, argv = argv[1] or None, argv[2:]
    try:
        args = overrides(profile, argv, load_params())
    except (ProfileError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(" ".join(f"-S {shell_word(a)}" for a in args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
