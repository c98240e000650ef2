"""The model: the CIFAR ResNet family (`network`) and its checkpoints (`checkpoint`), imported from here;
beside them what reads a model: `inputs` (images to tensors), `measure` (accuracy, params, MACs), `fold` (BatchNorm
folding) and `export` (the compact lossless file).

    model = CifarResNet(depth=56, num_classes=100)
    save_checkpoint("m.pt", model, meta={...}); model, meta = load_checkpoint("m.pt")
"""

from .checkpoint import CheckpointError, build, load_checkpoint, save_checkpoint
from .network import (
    ARCH,
    DEPTHS,
    LEGACY_ARCH,
    STREAM_WIDTHS,
    BasicBlock,
    CifarResNet,
    ModelConfig,
    SharedConv2d,
    ShortcutA,
    apply_masks,
    blocks_per_stage,
    conv3x3,
    count_params,
    materialize,
    padding_map,
)

__all__ = ["ARCH", "DEPTHS", "LEGACY_ARCH", "STREAM_WIDTHS", "BasicBlock", "CheckpointError", "CifarResNet",
           "ModelConfig", "SharedConv2d", "ShortcutA", "apply_masks", "blocks_per_stage", "build", "conv3x3",
           "count_params", "load_checkpoint", "materialize", "padding_map", "save_checkpoint"]
