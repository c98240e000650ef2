"""cnn_pruning.evaluation.deploy: the ONNX file users deploy, for every pruning method, checked against PyTorch; and
the same
file logged as an MLflow model and served by `mlflow models serve`, answering a real image with PyTorch's class."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from cnn_pruning import pruning, tracking
from cnn_pruning.datasets.dataset import Split
from cnn_pruning.evaluation import deploy
from cnn_pruning.model import CifarResNet
from helpers import SHARED_JPG, class_images, free_port, tool_env

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> CifarResNet:
    """A ResNet20 whose BatchNorms are not the identity (random running stats and affine), so folding matters."""
    torch.manual_seed(0)
    net = CifarResNet(20, 10, normalization={"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]})
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.concatenate([class_images(label, 4, seed=3) for label in range(10)])  # uint8 40×32×32×3


@pytest.mark.parametrize("method", ["none", *pruning.METHODS])
def test_every_method_exports_to_onnx_that_gives_pytorchs_classes(tmp_path, model, images, method):
    net = model if method == "none" else pruning.prune(model, method, 0.5).model
    path = tmp_path / f"{method}.onnx"
    check = deploy.export_onnx(net, path, images)
    assert check == {"images": 40, "max_rel_diff": check["max_rel_diff"], "same_class": 1.0}
    assert check["max_rel_diff"] < 1e-3
    # The file takes uint8 images as users have them, any batch size, and gives the unfolded model's classes.
    for batch in (images[:1], images[:7]):
        got = deploy.onnx_logits(path, batch)
        assert got.shape == (len(batch), 10)
        assert (got.argmax(1) == deploy.reference_logits(net, batch).argmax(1)).all()


def test_the_graph_holds_no_batchnorm_and_takes_uint8_images(tmp_path, model, images):
    import onnx
    path = tmp_path / "m.onnx"
    deploy.export_onnx(pruning.prune(model, "kmeans_shared", 0.5).model, path, images[:4])
    graph = onnx.load(str(path)).graph
    assert "BatchNormalization" not in {n.op_type for n in graph.node}
    [inp] = graph.input
    assert inp.name == "images" and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim] == ["batch", 32, 32, 3]


def test_bad_check_images_are_refused_before_anything_is_written(tmp_path, model, images):
    with pytest.raises(ValueError, match=r"uint8 N×H×W×3, got float32 \(4, 3, 32, 32\)"):
        deploy.export_onnx(model, tmp_path / "m.onnx", images[:4].transpose(0, 3, 1, 2).astype(np.float32))
    assert not list(tmp_path.iterdir())


def test_an_export_that_differs_from_pytorch_is_not_written(tmp_path, model, images, monkeypatch):
    # A reference the graph does not compute (as after a wrong fold or normalisation) must stop the export.
    real = deploy.reference_logits
    monkeypatch.setattr(deploy, "reference_logits", lambda net, x: real(net, x) + 1e3 * np.eye(10)[0])
    with pytest.raises(deploy.DeployError, match=r"m.onnx: the ONNX export's logits differ from PyTorch's on 8 images"):
        deploy.export_onnx(model, tmp_path / "m.onnx", images[:8])
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------- served by MLflow

def real_image() -> tuple[np.ndarray, str]:
    """One real CIFAR-10 test image from the shared JPEG archive where it is present, else a class-coloured one."""
    if SHARED_JPG.exists():
        import io
        import tarfile

        from PIL import Image
        with tarfile.open(SHARED_JPG) as tf:
            member = next(m for m in tf if m.isfile() and "test" in m.name and m.name.endswith(".jpg"))
            return np.asarray(Image.open(io.BytesIO(tf.extractfile(member).read())).convert("RGB"))[None], member.name
    return class_images(3, 1, seed=9), "class-coloured image"


@pytest.mark.server
def test_mlflow_serves_the_logged_model_and_answers_pytorchs_class(tmp_path, monkeypatch, model, images):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    # Named in params.yaml as in the pipeline, not by MLFLOW_EXPERIMENT_NAME, which would also steer MLflow's own
    # choice of experiment for the logged model (it once landed in "Default" because of that).
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    (tmp_path / "params.yaml").write_text("tracking:\n  experiment: serve-check\n")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.chdir(tmp_path)
    net = pruning.prune(model, "kmeans_channel", 0.5).model
    with tracking.stage_run("evaluate", "evaluate-kmeans_channel@0.5", params={}) as run:
        deploy.export_and_log(net, tmp_path / "m.onnx", Split(images, np.zeros(len(images), np.int64)), run,
                              dict.fromkeys(deploy.MODEL_METRICS, 0.5))
    client = MlflowClient(tracking_uri=store)
    [logged] = client.search_logged_models([client.get_experiment_by_name("serve-check").experiment_id])
    assert logged.source_run_id == run.run_id and {m.key for m in logged.metrics} == set(deploy.MODEL_METRICS)
    image, what = real_image()
    expected = int(deploy.reference_logits(net, image).argmax())

    port, log = free_port(), tmp_path / "serve.log"
    # `mlflow models serve` starts uvicorn from PATH: the venv's bin goes first (tool_env).
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", f"models:/{logged.model_id}",
             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
            env=tool_env(MLFLOW_TRACKING_URI=store), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"mlflow models serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, f"no answer in 120 s:\n{log.read_text()[-3000:]}"
                time.sleep(0.5)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                         data=json.dumps({"inputs": image.tolist()}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as resp:
            answer = json.loads(resp.read())
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # by its PID: its process group, uvicorn's workers included
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    logits = np.array(answer["predictions"]["logits"])
    assert logits.shape == (1, 10)
    assert int(logits.argmax()) == expected, f"served class differs from PyTorch's for {what}"
