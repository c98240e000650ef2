"""Weight sharing by k-means: the filters of each conv are clustered and every filter becomes its centroid.

    result = pruning.prune(model, "kmeans_shared", 0.75)               # each conv keeps a quarter of its filters
    result = pruning.prune(model, "kmeans_shared", 0.75, seed=1, n_init=8, include_stem=False)

Options: pruning.options.KMeansSharedOptions (default, allowed values and a line each; docs/settings.md).

For a conv of n filters, k = n - round(ratio * n) (at least 1; the package-wide counting rule, which equals
max(1, round((1 - ratio) * n)) for the ResNets' even widths). KMeans runs over the flattened filters (float64) and the
conv becomes a SharedConv2d (model.share) with codebook = the centroids and assignment = the labels, so shapes,
activations and the residual stream stay as they were while the layer holds only k distinct filters; fine-tuning
updates each centroid with the gradients of all its members, so the tie holds. If the layer has fewer distinct
filters than k, k is capped to that number. When every filter is its own cluster (ratio 0, say) k-means is skipped
and the codebook is the weights themselves, so the outputs are exactly the original ones.

The codebook holds exactly the distinct float32 filters the layer uses, ordered by first use (assignment[0] = 0),
so the k reported is exactly the number of distinct filters of the layer; materialize() gives the dense model.

Continuing from an earlier kmeans_shared result (gradual pruning): each shared layer is first turned back into a
plain conv holding its (fine-tuned) tied filters, which are then clustered again into n_kept(ratio, n) of the same n
filters: k only decreases, and the end has exactly the k one-shot gives (fewer only if filters coincide).

info: layers = {conv name: {n_filters, k_target, k, assignment: [cluster of each filter]}}.
"""

from __future__ import annotations

import numpy as np
import torch

from ..model import CifarResNet, materialize
from .common import conv_names, kmeans, n_kept


def distinct_in_order(filters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codebook, assignment): the distinct rows of `filters` in order of first appearance, and which row each was."""
    _, first, inverse = np.unique(filters, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)                     # unique() sorts rows lexicographically; we want first use
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return filters[first[order]], rank[inverse.reshape(-1)]


def prune(model: CifarResNet, ratio: float, seed: int, n_init: int, include_stem: bool,
          previous: dict | None = None) -> tuple[CifarResNet, dict]:
    if previous is not None:
        model = materialize(model)  # shared layers -> plain convs with the same filters, to be clustered again
    layers = {}
    for name in conv_names(model, include_stem):
        weight = model.get_submodule(name).weight.detach()
        n = weight.shape[0]
        # criterion: which filters share one
        labels, centroids = kmeans(weight.flatten(1).double().cpu().numpy(), n_kept(ratio, n), seed, n_init)
        filters = centroids[labels].astype(np.float32).reshape(weight.shape)
        codebook, assignment = distinct_in_order(filters)
        # surgery: swap in the shared layer
        layer = model.share(name, len(codebook)).to(weight.device)
        with torch.no_grad():
            layer.codebook.copy_(torch.from_numpy(codebook))
            layer.assignment.copy_(torch.from_numpy(assignment))
        layers[name] = {"n_filters": n, "k_target": n_kept(ratio, n), "k": len(codebook),
                        "assignment": assignment.tolist()}
    return model, {"layers": layers}
