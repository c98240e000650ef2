"""A model as users deploy it: one ONNX file that takes images as they have them and returns the class logits.

    check = export_onnx(model, "models/onnx/magnitude.onnx", ds.test.images[:256])   # checked against PyTorch
    export_and_log(model, "models/onnx/magnitude.onnx", ds.test, run, metrics)       # the evaluate stages
    logits = onnx_logits("models/onnx/magnitude.onnx", images)                      # numpy in, numpy out

The graph's input `images` is uint8 N×32×32×3 (height, width, RGB: what PIL, torchvision's datasets and our
dataset file hold), any batch size; its output `logits` is float32 N×classes. Inside: the cast to float, the
model's own normalisation statistics, the move to channels-first, then the deployed network (speed.deployable:
shared convs made plain, every BatchNorm folded into its conv, so conv+relu+add only, as it is timed). Before the
file is written, its outputs on real images are compared with the PyTorch model's, unfolded and in eval mode:
logits within F32_ATOL of the largest logit, and the same predicted class for every image.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn as nn

from ..core.files import atomic_path
from ..model import CifarResNet
from .speed import F32_ATOL, deployable, write_onnx


class DeployError(ValueError):
    """An export whose outputs differ from the PyTorch model's; nothing is written."""


class ImageModel(nn.Module):
    """uint8 N×H×W×3 images -> logits: the normalisation a CifarResNet was trained with, then the network."""

    def __init__(self, net: nn.Module, normalization: dict):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(normalization["mean"]).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(normalization["std"]).view(1, 3, 1, 1) * 255)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float()
        return self.net((x - self.mean) / self.std)


@torch.no_grad()
def reference_logits(model: CifarResNet, images: np.ndarray) -> np.ndarray:
    """The PyTorch model's logits for uint8 N×32×32×3 images (eval mode, on the CPU, nothing folded)."""
    model = model.cpu().eval()
    return ImageModel(model, model.normalization)(torch.tensor(images)).numpy()  # a copy: read-only arrays too


def onnx_logits(path: str | os.PathLike, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": images})[0]


def export_onnx(model: CifarResNet, path: str | os.PathLike, check_images: np.ndarray) -> dict:
    """Write `model` as ONNX to `path` (atomically) once its outputs on `check_images` (uint8 N×32×32×3) match the
    PyTorch model's; returns what was checked: images, the largest logit difference relative to the largest logit,
    the share of images whose predicted class agrees (1.0, or DeployError)."""
    if check_images.dtype != np.uint8 or check_images.ndim != 4 or check_images.shape[-1] != 3:
        raise ValueError(f"check images must be uint8 N×H×W×3, got {check_images.dtype} {check_images.shape}")
    net = ImageModel(deployable(model).cpu(), model.normalization).eval()
    with atomic_path(path) as tmp:
        write_onnx(net, torch.from_numpy(check_images[:2]), tmp, input_name="images")
        got, want = onnx_logits(tmp, check_images), reference_logits(model, check_images)
        diff = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))
        agree = float((got.argmax(1) == want.argmax(1)).mean())
        if diff > F32_ATOL or agree < 1.0:
            raise DeployError(f"{path}: the ONNX export's logits differ from PyTorch's on {len(check_images)} images "
                              f"(largest difference {diff:.2e} of the largest logit, allowed {F32_ATOL:.0e}; "
                              f"{agree:.1%} same class); not written")
    return {"images": len(check_images), "max_rel_diff": diff, "same_class": agree}


CHECK_IMAGES = 256  # test images an export's outputs are checked on against PyTorch's
MODEL_METRICS = ("test_acc", "speedup", "size_ratio", "macs", "size_bytes")  # logged against the MLflow model


def export_and_log(model: CifarResNet, path: str | os.PathLike, test, run, metrics: dict) -> dict:
    """What the evaluate stages do: export `model` to `path`, checked on CHECK_IMAGES images of the `test` split,
    and log it to `run` (a cnn_pruning.tracking.StageRun) as an MLflow model with two of them as its input example
    and its MODEL_METRICS from `metrics`. Returns the check."""
    check = export_onnx(model, path, test.images[:CHECK_IMAGES])
    run.set_tags({"onnx_max_rel_diff": f"{check['max_rel_diff']:.1e}"})
    run.log_onnx_model(path, test.images[:2], "model", {k: metrics[k] for k in MODEL_METRICS})
    return check
