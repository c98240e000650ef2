"""Channel clustering: similar inner channels of each residual block are clustered, one per cluster is kept.

    result = pruning.prune(model, "kmeans_channel", 0.5)               # merge=True: C-SGD-style merged weights
    result = pruning.prune(model, "kmeans_channel", 0.5, merge=False, seed=1, n_init=8)

Options: the `Options` dataclass below (default, allowed values and a line each; the README's settings table).

For the first conv of each residual block (n filters, the block's inner width): BN1 is folded into the filters,
w * gamma / sqrt(var + eps) flattened plus the folded bias beta - gamma * mean / sqrt(var + eps), so two channels
whose post-BN outputs agree are close. KMeans clusters these rows into k = n - round(ratio * n) clusters (at least
1; capped at the number of distinct rows). Each cluster keeps one representative: the member closest to the centroid
(ties: the lower index). conv1's filters, bn1's entries and conv2's input channels of the other members are removed,
so the inner width becomes k and the block is really smaller. With merge=True conv2 gets, for each kept channel, the
sum of its members' input slices: had the members' activations been equal, conv2's output would be unchanged (this
is how C-SGD, Ding et al. 2019, merges clustered channels), so the network starts fine-tuning close to the original.
When every channel is its own cluster (ratio 0) nothing changes.

info: merge, inner_widths, layers = {"blocks.i.conv1": {n_filters, k_target, k, kept: [indices], clusters: [[member
indices] for each kept channel, in the kept order]}}; indices refer to the original model's channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import CifarResNet
from ..schema import BOOLEAN, setting
from .common import KMeansOptions, folded_filters, kmeans, n_kept, remove_inner_channels


@dataclass
class Options(KMeansOptions):
    """k-means channel clustering's options."""
    merge: bool = setting(True, BOOLEAN, "sum conv2's input weights of a cluster into the kept channel (C-SGD); "
                          "false: drop them")


def prune(model: CifarResNet, ratio: float, seed: int, n_init: int, merge: bool) -> tuple[CifarResNet, dict]:
    keep, groups, layers = {}, {}, {}
    for i, block in enumerate(model.blocks):
        # criterion: cluster the BN-folded filters, pick each cluster's member nearest its centroid
        points = folded_filters(block.conv1, block.bn1)
        labels, centroids = kmeans(points, n_kept(ratio, len(points)), seed, n_init)
        clusters = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            distance = ((points[members] - centroids[c]) ** 2).sum(1)
            clusters.append((int(members[np.argmin(distance)]), members.tolist()))  # argmin: first of ties
        clusters.sort()  # by representative: the kept channels stay in their original order
        keep[i], groups[i] = [rep for rep, _ in clusters], [members for _, members in clusters]
        layers[f"blocks.{i}.conv1"] = {"n_filters": len(points), "k_target": n_kept(ratio, len(points)),
                                       "k": len(clusters), "kept": keep[i], "clusters": groups[i]}
    # surgery: one shrink of all blocks, summing conv2's member slices into the kept channel with merge
    model = remove_inner_channels(model, keep, groups if merge else None)
    return model, {"merge": merge, "inner_widths": list(model.inner_widths), "layers": layers}
