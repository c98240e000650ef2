#!/usr/bin/env bash
# A ResNet-56 quick run on the local JPEG copy of CIFAR-10, through every stage with every method: the smallest run
# that shows the pipeline working at the depth structured-pruning papers benchmark, on a 2-core CPU. The data is
# the ResNet20 quick profile's (10,000 training and 2,000 test images), with fewer epochs because a
# ResNet-56 step costs about 2.7x a ResNet20 step (benchmarks/depth_epoch.py): 10 training epochs, 3 fine-tune
# epochs; the sweep at 4 ratios; the study at one ratio (0.5) and one seed for all six methods. Its accuracies are
# those of a briefly trained model on a fifth of the data, not ResNet-56's (93% in He et al. 2016).
#
#   tools/resnet56_quick.sh             # from a clone with ../shared beside it (tools/quick_exp.sh); prints the wall time
#
# Results: reports/summary.md, reports/study.md, metrics/train/*.timing.json (seconds per epoch), as ever.
exec "$(dirname "$0")/quick_exp.sh" resnet56-quick "" model.depth=56 train.epochs=10 finetune.epochs=3 \
    "sweep.ratios=[0.3,0.5,0.7,0.9]" "study.ratios=[0.5]" "study.seeds=[0]"
