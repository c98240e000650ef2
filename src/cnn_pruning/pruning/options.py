"""Every pruning method's options (default, allowed values and a line each) and the registry of method names, apart
from the methods' code: checking params.yaml, and every stage that only names methods, imports neither
scikit-learn nor Torch-Pruning. A method's module is imported when something prunes with it (pruning.prune).

    REGISTRY["l2_unit"].options          # L2UnitOptions: what prune.options.l2_unit may hold
    REGISTRY["random"].module            # "random_weights": the module in this package that prunes
    REGISTRY["random"].matches           # ("magnitude",): the criteria a random baseline is the chance level of
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.schema import BOOLEAN, integer, one_of, setting


@dataclass
class KMeansOptions:
    """The options every k-means method has (each method's Options adds its own)."""
    seed: int = setting(0, integer(0, 2**32 - 1), "random_state of scikit-learn's KMeans (k-means++ init)")
    n_init: int = setting(4, integer(1, 1000), "k-means restarts; the best (lowest inertia) one is kept")


@dataclass
class ChannelOptions:
    """The options every channel-removing method has (each method's Options adds its own)."""
    scope: str = setting("inner", one_of("inner", "all"),
                         "inner: only each block's inner width shrinks (the seeds' method); all: the residual "
                         "streams too (every coupled group the dependency graph finds)")
    round_to: int = setting(1, integer(1, 64), "kept channels per group rounded to a multiple of this (8 or 16 suit "
                            "the runtimes' fast kernels; the ratio is then approximate); 1 = exact counts")


@dataclass
class MagnitudeOptions:
    """Magnitude pruning's options."""
    scope: str = setting("global", one_of("global", "layer"),
                         "global: rank all prunable weights together; layer: each tensor loses the same fraction")
    include_stem: bool = setting(False, BOOLEAN, "prune the first conv too (432 weights; hurts most, saves least)")
    include_fc: bool = setting(False, BOOLEAN, "prune the classifier too")


@dataclass
class L2UnitOptions(ChannelOptions):
    """L2 filter pruning's options."""
    include_stem: bool = setting(True, BOOLEAN, "also prune the stem conv's filters (scope inner: zeroed, they feed "
                                 "the residual sum; scope all: stream.0 shrinks)")


@dataclass
class KMeansSharedOptions(KMeansOptions):
    """k-means weight sharing's options."""
    include_stem: bool = setting(True, BOOLEAN, "also share the stem conv's filters")


@dataclass
class KMeansChannelOptions(KMeansOptions, ChannelOptions):
    """k-means channel clustering's options."""
    merge: bool = setting(True, BOOLEAN, "sum the readers' input weights of a cluster into the kept channel "
                          "(C-SGD); false: drop them")


@dataclass
class RandomOptions(MagnitudeOptions):
    """The random weight baseline's options (magnitude's, plus the seed)."""
    seed: int = setting(0, integer(0, 2**63 - 1), "which positions: torch.Generator seed")


@dataclass
class RandomChannelOptions(ChannelOptions):
    """The random channel baseline's options."""
    seed: int = setting(0, integer(0, 2**63 - 1), "which channels: torch.Generator seed")


@dataclass(frozen=True)
class Method:
    """A registered method: the module of this package that prunes with it and its options; for a random baseline,
    the criteria whose counts it reproduces (`matches`) when the options in `matched_options` agree."""
    module: str
    options: type
    matches: tuple[str, ...] = ()
    matched_options: tuple[str, ...] = ()


REGISTRY = {
    "magnitude": Method("magnitude", MagnitudeOptions),
    "l2_unit": Method("l2_unit", L2UnitOptions),
    "kmeans_shared": Method("kmeans_shared", KMeansSharedOptions),
    "kmeans_channel": Method("kmeans_channel", KMeansChannelOptions),
    "random": Method("random_weights", RandomOptions, ("magnitude",), ("scope", "include_stem", "include_fc")),
    "random_channel": Method("random_channel", RandomChannelOptions, ("l2_unit", "kmeans_channel"),
                             ("scope", "round_to")),
}
