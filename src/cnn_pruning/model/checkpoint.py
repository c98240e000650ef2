"""Checkpoints: a model's state_dict, its architecture spec and its masks, nothing pickled.

    save_checkpoint("m.pt", model, meta={...})
    model, meta = load_checkpoint("m.pt")      # torch.load(weights_only=True), strict shape and key check
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from ..core.files import atomic_path
from .network import ARCH, LEGACY_ARCH, CifarResNet


class CheckpointError(ValueError):
    """A checkpoint that is unsafe, malformed, or does not match its architecture spec."""


def build(spec: dict) -> CifarResNet:
    """The architecture a spec describes (weights freshly initialised); a pre-family "resnet20" spec is a depth-20
    model with the paper's stream widths and maps, normalised with the CIFAR-10 statistics."""
    if not isinstance(spec, dict) or spec.get("arch") not in (ARCH, LEGACY_ARCH):
        got = spec.get("arch") if isinstance(spec, dict) else spec
        raise CheckpointError(f"unknown architecture {got!r}; allowed: {ARCH!r} (or the older {LEGACY_ARCH!r})")
    try:
        if spec["arch"] == LEGACY_ARCH:
            return CifarResNet(20, spec["num_classes"], inner_widths=spec["inner_widths"],
                               shared=spec.get("shared") or {})
        return CifarResNet(spec["depth"], spec["num_classes"], spec["stream_widths"], spec["inner_widths"],
                           spec.get("shortcut_maps") or {}, spec.get("shared") or {}, spec.get("normalization"))
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"bad architecture spec {spec}: {e}") from e


def save_checkpoint(path: str | os.PathLike, model: CifarResNet, meta: dict | None = None) -> None:
    """Save state_dict + spec + masks (+ meta) atomically. Tensors and plain containers only, never a module."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    masks = {k: v.detach().cpu().bool() for k, v in getattr(model, "masks", {}).items()}
    # Saved through a file object: torch.save names the archive inside after a *path's* file name (here a random
    # temporary one), and the same model must give the same bytes so DVC sees an unchanged output.
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save({"spec": model.spec(), "state_dict": state, "masks": masks, "meta": meta or {}}, f)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[CifarResNet, dict]:
    """The one loader: weights_only=True, then a strict match of the tensors against the spec's architecture."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: refused to load: it holds objects other than tensors and plain "
                              f"containers, which could run code ({str(e).splitlines()[0]})") from e
    except (RuntimeError, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({e})") from e
    if not isinstance(ckpt, dict) or not {"spec", "state_dict"} <= ckpt.keys():
        raise CheckpointError(f"{path}: expected a dict with 'spec' and 'state_dict'")
    model = build(ckpt["spec"])
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: tensors do not match the architecture spec {ckpt['spec']}: {e}") from e
    params = dict(model.named_parameters())
    for name, keep in (ckpt.get("masks") or {}).items():
        if name not in params or not isinstance(keep, torch.Tensor) or keep.shape != params[name].shape:
            raise CheckpointError(f"{path}: mask {name!r} does not match a parameter of the architecture")
        model.masks[name] = keep.bool()
    return model, ckpt.get("meta", {})
