"""The datasets known by name: where the official copy lives, its md5, its classes and its published statistics.

    known = catalog.KNOWN["cifar100"]      # Known(title="CIFAR-100", url=..., md5=..., classes=(100 names), ...)
    catalog.title("flowers32")             # "flowers32": a dataset of your own is called by its params name

Any other `data.name` is a dataset of the user's own (an image folder or archive in data.source): its class names
come from its folders and its normalisation statistics from its training split (cnn_pruning.datasets.prepare).
Plain constants only: the model module reads CIFAR-10's statistics from here without importing any reader.
"""

from __future__ import annotations

from dataclasses import dataclass

# Per-channel mean and standard deviation of the training images (RGB, fractions of 255), as published and used by
# the reference CIFAR ResNet code. CIFAR-10's are the ones this project always used, so CIFAR-10 results stay as
# they were; a checkpoint saved without statistics is normalised with them.
CIFAR10_NORMALIZATION = {"mean": (0.4914, 0.4822, 0.4465), "std": (0.2470, 0.2435, 0.2616)}
CIFAR100_NORMALIZATION = {"mean": (0.5071, 0.4865, 0.4409), "std": (0.2673, 0.2564, 0.2762)}

# Sorted, so a class index is its position here, as in the official labels.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# CIFAR-100's 100 fine labels, in the order of the official `meta` file's fine_label_names (alphabetical).
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)


@dataclass(frozen=True)
class Known:
    """A dataset with an official python-format tarball (50,000 train + 10,000 test 32×32 RGB images)."""
    title: str                  # how reports and charts name it
    url: str                    # the official tarball
    md5: str                    # ... and its md5
    classes: tuple[str, ...]    # class names, in label order
    normalization: dict         # published per-channel statistics
    images: int = 60_000        # train + test, for the free-space check before reading


KNOWN = {
    "cifar10": Known("CIFAR-10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                     "c58f30108f718f92721af3b95e74349a", CIFAR10_CLASSES, CIFAR10_NORMALIZATION),
    "cifar100": Known("CIFAR-100", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                      "eb9058c3a382ffc7106e4002c42a8d85", CIFAR100_CLASSES, CIFAR100_NORMALIZATION),
}


def title(name: str) -> str:
    """What a report calls the dataset `name`: the official title, or the params name of one's own."""
    return KNOWN[name].title if name in KNOWN else name
