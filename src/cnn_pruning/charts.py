"""Matplotlib charts written as PNG files (headless: the Agg backend, no display needed)."""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .files import atomic_path  # noqa: E402


def plot_history(history: Sequence[dict], path: str | os.PathLike, title: str) -> None:
    """Loss and accuracy per epoch, train vs validation, side by side."""
    epochs = [r["epoch"] for r in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "--"), ("val", "-")):
        loss_ax.plot(epochs, [r[f"{split}_loss"] for r in history], style, marker=".", label=split)
        acc_ax.plot(epochs, [100 * r[f"{split}_acc"] for r in history], style, marker=".", label=split)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="top-1 accuracy (%)", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
