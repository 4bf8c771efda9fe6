"""tools/convert_torchvision.py: torchvision's ResNet weights -> the Detectron2 backbone the COCO configs start
from, checked on randomly initialised torchvision ResNets against the converted backbone's features."""
import os
import subprocess
import sys

import pytest
import torch
import torchvision
from conftest import ROOT, randomise_batchnorms
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate

from configs.models.common import resnet
from kddetr.convert_torchvision import torchvision_to_detectron2


def random_torchvision_resnet(depth: int) -> torch.nn.Module:
    """A torchvision ResNet with random weights and random batch-norm statistics and affine terms (fresh
    ones are 0/1: a wrong mapping of them would go unseen), in eval mode."""
    torch.manual_seed(depth)
    return randomise_batchnorms(getattr(torchvision.models, f"resnet{depth}")(weights=None))


def torchvision_features(net: torch.nn.Module, x: torch.Tensor) -> dict:
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    out = {}
    for i in range(1, 5):
        x = getattr(net, f"layer{i}")(x)
        out[f"res{i + 1}"] = x
    return out


@pytest.mark.parametrize("depth", [18, 50])
def test_the_converted_backbone_computes_torchvisions_features(tmp_path, depth):
    """The tool's file, loaded by Detectron2's checkpointer (name matching by suffix, as for a student) into
    the configs' backbone (FrozenBN, torchvision-style strides), gives torchvision's features at every stage;
    every backbone tensor is loaded and only the classifier and the step counters are left out."""
    net = random_torchvision_resnet(depth)
    source = tmp_path / f"resnet{depth}.pth"
    torch.save(net.state_dict(), source)
    output = tmp_path / f"R-{depth}.pkl"
    run = subprocess.run([sys.executable, "tools/convert_torchvision.py", "--input", str(source), "--output",
                          str(output)], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert run.returncode == 0, run.stderr
    assert f"ResNet-{depth}: wrote" in run.stdout

    backbone = instantiate(resnet(depth=depth, freeze_at=0, out_features=("res2", "res3", "res4", "res5"))).eval()
    loaded = DetectionCheckpointer(backbone).load(str(output))
    assert loaded.get("__author__") == "torchvision"
    _, _, dropped = torchvision_to_detectron2(net.state_dict())
    assert all(k.startswith("fc.") or k.endswith("num_batches_tracked") for k in dropped)
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        ours, theirs = backbone(x), torchvision_features(net, x)
    for name, feature in theirs.items():
        torch.testing.assert_close(ours[name], feature, rtol=1e-4, atol=1e-4, msg=f"ResNet-{depth} {name}")


def test_a_wrong_mapping_is_seen(tmp_path):
    """The comparison can fail: the same backbone left random differs from torchvision's features."""
    net = random_torchvision_resnet(18)
    backbone = instantiate(resnet(depth=18, freeze_at=0, out_features=("res5",))).eval()
    with torch.no_grad():
        assert not torch.allclose(backbone(torch.ones(1, 3, 64, 64))["res5"],
                                  torchvision_features(net, torch.ones(1, 3, 64, 64))["res5"], atol=1e-3)


def test_a_file_that_is_not_a_torchvision_resnet_is_refused(tmp_path):
    source = tmp_path / "other.pth"
    torch.save({"model": {"backbone.stem.conv1.weight": torch.zeros(64, 3, 7, 7)}}, source)
    run = subprocess.run([sys.executable, "tools/convert_torchvision.py", "--input", str(source)], cwd=ROOT,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert run.returncode != 0
    assert "not a torchvision ResNet state dict" in run.stderr and "Traceback" not in run.stderr


def test_a_missing_file_and_a_resnet_of_no_known_depth_are_refused(tmp_path):
    """Each with one message naming the fix, exit status 1, no traceback."""
    torch.save({k: v for k, v in random_torchvision_resnet(18).state_dict().items()
                if not k.startswith("layer1.1.")}, tmp_path / "odd.pth")  # 1 block in layer1: (1, 2, 2, 2)
    for argv, message in ((["--input", str(tmp_path / "none.pth")], "does not exist: give torchvision's"),
                          (["--input", str(tmp_path / "odd.pth")], "a ResNet with (1, 2, 2, 2) blocks per stage")):
        run = subprocess.run([sys.executable, "tools/convert_torchvision.py", *argv], cwd=ROOT, capture_output=True,
                             text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
        assert run.returncode == 1 and message in run.stderr and "Traceback" not in run.stderr, run.stderr
