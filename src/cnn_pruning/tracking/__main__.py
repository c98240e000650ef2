"""python -m cnn_pruning.tracking url [BASE]: the experiment's page in MLflow's Model-training view (make mlflow-ui)."""

import sys

from . import ui_url

if sys.argv[1:2] != ["url"]:
    sys.exit("usage: python -m cnn_pruning.tracking url [http://HOST:PORT]")
print(ui_url(*sys.argv[2:3]))
