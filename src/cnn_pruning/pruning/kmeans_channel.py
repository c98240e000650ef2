"""Channel clustering: similar channels of each coupled group are clustered, one per cluster is kept.

    result = pruning.prune(model, "kmeans_channel", 0.5)               # scope inner, merge=True (C-SGD style)
    result = pruning.prune(model, "kmeans_channel", 0.5, scope="all")  # the residual streams too
    result = pruning.prune(model, "kmeans_channel", 0.5, merge=False, seed=1, n_init=8, round_to=8)

Options: pruning.options.KMeansChannelOptions (default, allowed values and a line each; docs/settings.md).

Each group (pruning.graph: scope inner = every block's inner width; scope all = those and every residual stream)
is described per channel by the BN-folded filters of every layer that writes it: w * gamma / sqrt(var + eps)
flattened plus the folded bias beta - gamma * mean / sqrt(var + eps), one row per channel, the writers' rows side
by side for a stream (the stem or each block's second conv with its BN; the parameter-free shortcut adds no
features). Two channels whose post-BN outputs agree in every writer are close. KMeans clusters the rows into
k = common.n_kept(ratio, n, round_to) clusters (capped at the number of distinct rows). Each cluster keeps one
representative: the member closest to the centroid (ties: the lower index); the other members are removed from
every coupled layer, so the model is really narrower. With merge=True every layer that reads the group gets, for
each kept channel, the sum of its members' input slices, and shortcuts that copied a member copy the kept channel:
had the members' activations been equal, nothing downstream would change (C-SGD, Ding et al. 2019), so the network
starts fine-tuning close to the original. When every channel is its own cluster (ratio 0) nothing changes.

Continuing from an earlier kmeans_channel result (gradual pruning): the channels left are clustered again into
n_kept(ratio, original width) clusters, so the end has the widths one-shot gives; a kept channel already carries its
earlier cluster's merged weights, so merging again sums whole earlier clusters, and info's clusters list the
original members.

info: merge, stream_widths, inner_widths, layers = {group: {n_filters, k_target, k, kept: [indices], clusters:
[[member indices] for each kept channel, in the kept order]}}, keyed "blocks.i.conv1" for inner groups and
"stream.s" (with its writers) for streams; indices refer to the original model's channels.
"""

from __future__ import annotations

import numpy as np

from ..model import CifarResNet
from .common import folded_filters, kmeans, n_kept, origins
from .graph import channel_groups, remove_channels


def prune(model: CifarResNet, ratio: float, seed: int, n_init: int, merge: bool, scope: str, round_to: int,
          previous: dict | None = None) -> tuple[CifarResNet, dict]:
    keep, clusters_of, layers = {}, {}, {}
    groups = channel_groups(model)
    origin = origins(groups, previous)
    for g in groups:
        if g.kind != "inner" and scope != "all":
            continue
        if any(bn is None for _, bn in g.writers):
            raise ValueError(f"kmeans_channel folds each writer's BatchNorm; {g.name} has a writer without one")
        # criterion: cluster the BN-folded filters, pick each cluster's member nearest its centroid
        points = np.hstack([folded_filters(model.get_submodule(c), model.get_submodule(b)) for c, b in g.writers])
        n, originally = origin[g.name]
        earlier = (previous or {}).get("layers", {}).get(g.name, {}).get("clusters") or [[i] for i in originally]
        k_target = n_kept(ratio, n, round_to)
        labels, centroids = kmeans(points, k_target, seed, n_init)
        clusters = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            distance = ((points[members] - centroids[c]) ** 2).sum(1)
            clusters.append((int(members[np.argmin(distance)]), members.tolist()))  # argmin: first of ties
        clusters.sort()  # by representative: the kept channels stay in their original order
        keep[g.name], clusters_of[g.name] = [rep for rep, _ in clusters], [members for _, members in clusters]
        layers[g.name] = {"n_filters": n, "k_target": k_target, "k": len(clusters),
                          "kept": [originally[i] for i in keep[g.name]],
                          "clusters": [sorted(o for i in members for o in earlier[i])
                                       for members in clusters_of[g.name]]}
        if g.kind == "stream":
            layers[g.name]["writers"] = [c for c, _ in g.writers]
    # surgery: one pass over the groups, summing the readers' member slices into the kept channel with merge
    model = remove_channels(model, keep, clusters_of if merge else None)
    return model, {"merge": merge, "stream_widths": list(model.stream_widths),
                   "inner_widths": list(model.inner_widths), "layers": layers}
