"""cnn_pruning: reproducible pruning experiments for the CIFAR ResNets (depth 20 to 110) on 32×32 datasets.

A small library of pure functions and small classes; the DVC stages in stages/ call it.
Only `cnn_pruning.tracking` imports mlflow; nothing here imports dvc.
"""

__version__ = "0.1.0"
