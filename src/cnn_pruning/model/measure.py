"""What the project measures about a model, except wall-clock speed: accuracy, stored parameters, filters, MACs.

    from cnn_pruning import measure
    measure.accuracy(model, ds.test)     # {"accuracy": 0.91, "per_class": [10 floats], "correct": .., "n": ..}
    measure.count_parameters(model)      # {"params", "nonzero_params", "index_entries", "conv_filters", ...}
    measure.count_macs(model)            # 40_551_040 for the dense ResNet20 (multiply-accumulates per image)
    measure.model_summary(model)         # all the scalar counts above in one json-serialisable dict

A model against its base (stored size and measured speed too) is cnn_pruning.evaluation's job.

MACs come from one counter, count_macs(), run on materialize(model) so a SharedConv2d counts as the dense conv that
actually runs; it agrees exactly with torch.utils.flop_counter.FlopCounterMode / 2 (tested). Both count
convolutions and matmuls only:
a conv costs Hout*Wout*Cout*Cin*kh*kw MACs (padding positions included), a linear layer in*out. BatchNorm, ReLU,
the residual additions, the shortcut's zero padding and the average pool are not counted (together about 0.2M
elementwise ops for ResNet20, and mostly folded away at inference). Dense ResNet20 then comes to 40,551,040 MACs:
  stem 442,368 + stage 1 6x2,359,296 + stages 2 and 3 each (1,179,648 + 5x2,359,296) + fc 640,
which is the "~41M" usually quoted for ResNet20. Zero weights still run in a dense conv, so a magnitude-pruned
model has the dense MACs; `count_macs(model, skip_zero_weights=True)` gives the theoretical count if every zero
weight were skipped (Hout*Wout*nonzeros per conv), which nothing in this project runs.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..datasets.catalog import CIFAR10_NORMALIZATION
from ..datasets.dataset import Split
from . import SharedConv2d, count_params, materialize
from .inputs import normalize, to_device


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


# ---------------------------------------------------------------------------------------------- accuracy

@torch.no_grad()
def accuracy(model: nn.Module, split: Split, batch_size: int = 1000, device: str | torch.device = "cpu") -> dict:
    """Top-1 accuracy and per-class accuracy (recall) of `model` on a numpy split, in eval mode.

    The model goes back to its own device and train/eval mode afterwards. A class absent from the split gets
    None (null in JSON) as its accuracy rather than NaN, which is not valid JSON.
    """
    device = torch.device(device)
    home, was_training = _device_of(model), model.training
    x, y = to_device(split, device)
    stats = getattr(model, "normalization", CIFAR10_NORMALIZATION)
    model.to(device).eval()
    try:
        preds = torch.cat([model(normalize(x[i:i + batch_size], stats)).argmax(1)
                           for i in range(0, len(y), batch_size)]) \
            if len(y) else torch.zeros(0, dtype=torch.long, device=device)
    finally:
        model.to(home).train(was_training)
    num_classes = getattr(model, "num_classes", None) or int(y.max().item()) + 1
    y = y.cpu()
    hit = (preds.cpu() == y).long()
    n_c = torch.bincount(y, minlength=num_classes).tolist()
    hit_c = torch.bincount(y, weights=hit.double(), minlength=num_classes).long().tolist()
    correct = int(hit.sum())
    return {"accuracy": correct / max(1, len(y)), "per_class": [h / n if n else None for h, n in zip(hit_c, n_c)],
            "correct": correct, "n": int(len(y))}


# ---------------------------------------------------------------------------------------------- parameters, filters

def _conv_layers(model: nn.Module):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, SharedConv2d))]


@torch.no_grad()
def count_parameters(model: nn.Module) -> dict:
    """What the model stores, and how many different filters its convs really hold.

    params          numel of all nn.Parameters: for a SharedConv2d that is its k-filter codebook, not the
                    Cout filters it expands to (zeros still count: they are stored unless exported sparsely)
    nonzero_params  parameters that are not exactly zero
    index_entries   SharedConv2d assignment entries (one small integer per output filter), a buffer, not a param
    conv_filters    output filters over all convs (stem included)
    distinct_filters  a SharedConv2d counts its k; a plain conv its number of distinct weight rows (all-zero
                    rows, e.g. pruned units, count once as one distinct filter)
    zero_filters    output filters that are entirely zero (plain convs; a SharedConv2d's zero codebook rows
                    times how many filters use them)
    layers          the same per conv: {name: {"filters", "distinct", "zero", "params", "nonzero"}}
    """
    params = count_params(model)
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    layers, index_entries = {}, 0
    for name, m in _conv_layers(model):
        if isinstance(m, SharedConv2d):
            index_entries += m.assignment.numel()
            zero_rows = (m.codebook.flatten(1) == 0).all(1)
            distinct, zero = m.k, int(zero_rows[m.assignment].sum())
            stored = m.codebook
        else:
            rows = m.weight.flatten(1)
            # torch.unique compares values, so -0.0 and 0.0 rows are the same filter, as they should be.
            distinct, zero = int(torch.unique(rows, dim=0).shape[0]), int((rows == 0).all(1).sum())
            stored = m.weight
        layers[name] = {"filters": m.out_channels, "distinct": distinct, "zero": zero,
                        "params": stored.numel(), "nonzero": int(torch.count_nonzero(stored))}
    return {"params": params, "nonzero_params": nonzero, "index_entries": index_entries,
            "conv_filters": sum(v["filters"] for v in layers.values()),
            "distinct_filters": sum(v["distinct"] for v in layers.values()),
            "zero_filters": sum(v["zero"] for v in layers.values()), "layers": layers}


# ---------------------------------------------------------------------------------------------- MACs

@torch.no_grad()
def count_macs(model: nn.Module, batch: int = 1, skip_zero_weights: bool = False, image_size: int = 32) -> int:
    """Multiply-accumulates per image of one forward pass: every conv and linear layer that runs, counted by hooks.

    A conv costs Hout*Wout*(its weight's numel) = Hout*Wout*Cout*Cin*kh*kw, a linear layer in*out: exactly what
    torch.utils.flop_counter.FlopCounterMode reports / 2 (tests/test_measure.py checks the two agree), without its
    start-up cost (it imports torch._dynamo: a second per stage). `batch` is only the probe's batch size; the result
    is per image. With `skip_zero_weights`, each layer counts Hout*Wout*nonzero_weights instead: the theoretical
    work if zero weights were skipped, which nothing in this project runs.
    """
    dense = materialize(model) if any(isinstance(m, SharedConv2d) for m in model.modules()) else model
    was_training = dense.training
    dense.eval()  # BN in eval mode: a probe must not touch the running statistics
    x = torch.zeros(batch, 3, image_size, image_size, device=_device_of(dense))
    total, hooks = [0], []

    def hook(m, inputs, out):
        # positions where the layer's weights are applied per image: Hout*Wout for a conv, 1 for a linear
        positions = out[0].numel() // (m.out_channels if isinstance(m, nn.Conv2d) else m.out_features)
        weights = int(torch.count_nonzero(m.weight)) if skip_zero_weights else m.weight.numel()
        total[0] += positions * weights

    for m in dense.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(hook))
    try:
        dense(x)
    finally:
        for h in hooks:
            h.remove()
        dense.train(was_training)
    return total[0]


def model_summary(model: nn.Module) -> dict:
    """The scalar counts and MACs in one json-serialisable dict (per-layer detail: count_parameters()["layers"])."""
    counts = {k: v for k, v in count_parameters(model).items() if k != "layers"}
    spec = model.spec() if hasattr(model, "spec") else {}
    return {**counts,
            "sparsity": 1.0 - counts["nonzero_params"] / max(1, counts["params"]),
            "macs": count_macs(model),
            "macs_nonzero_weights": count_macs(model, skip_zero_weights=True),
            "stream_widths": list(spec.get("stream_widths", [])),
            "inner_widths": list(spec.get("inner_widths", [])),
            "shared_k": dict(spec.get("shared", {}))}
