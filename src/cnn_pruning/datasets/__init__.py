"""A 32×32 RGB dataset (CIFAR-10, CIFAR-100 or image folders of one's own) from any supported source into one
canonical file that later stages load in well under a second.

One concept per module; a stage imports only what it uses, so reading the canonical file does not depend on the
readers of source formats (and a change to a reader reruns only the download stage):

    dataset   the canonical file: Split, Dataset, save/load/summary, DataError
    catalog   the datasets known by name (CIFAR-10, CIFAR-100): URL, md5, classes, published statistics
    source    where the data comes from: locating a path or URL, downloading (torchvision), md5, free space
    archive   a folder, tar or zip archive read member by member as a Tree, and finding the layout inside it
    pickles   the official python-format files of CIFAR-10 and CIFAR-100, through a restricted unpickler
    folder    image folders train/<class>/*.{png,jpg} + test/<class>/*, any number of classes
    splits    stratified validation split and subsets
    prepare   the download stage's work: source → checked, split, saved canonical file (DataConfig: params.yaml data)

    from cnn_pruning.datasets import dataset, prepare
    ds = prepare.prepare("cifar10", source, md5, "data/cifar10.npz", root=Path("."), val_size=5000)
    ds = dataset.load("data/cifar10.npz")      # ds.train.images: uint8 N×32×32×3, ds.train.labels: int64 N
"""
