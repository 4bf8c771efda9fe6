"""The teacher check (kddetr.engine.teacher_check): a teacher that loads but predicts nothing useful
on a slice of the test set is stopped before training; a trained one passes."""
import copy
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, build_tiny_dino, build_tiny_kd, overfit
from detectron2.config import LazyConfig, instantiate
from detectron2.data import detection_utils as utils
from detectron2.data import get_detection_dataset_dicts
from test_train_distill import CONFIG, FAST, SIZES

from kddetr.engine.teacher_check import TeacherCheck, TeacherCheckError, check_teacher, teacher_slice_ap

SLICE = 4  # images of synthetic_val_mini the teacher is trained and checked on


@pytest.fixture(scope="module")
def data():
    cfg = LazyConfig.apply_overrides(LazyConfig.load(os.path.join(ROOT, CONFIG)), [
        "dataloader.test.dataset.names=synthetic_val_mini", "dataloader.test.num_workers=0"])
    return cfg.dataloader


@pytest.fixture(scope="module")
def trained_teacher():
    """A tiny DINO trained on the slice's images (50 steps): a teacher that detects there."""
    batch = []
    for d in get_detection_dataset_dicts("synthetic_val_mini")[:SLICE]:
        img = utils.read_image(d["file_name"], format="RGB")
        instances = utils.annotations_to_instances(d["annotations"], img.shape[:2])
        batch.append({"image": torch.as_tensor(img.transpose(2, 0, 1).copy()), "height": img.shape[0],
                      "width": img.shape[1], "instances": instances})
    teacher = build_tiny_dino(num_queries=30).train()
    overfit(teacher, batch, iters=50)
    return teacher.eval()


def shuffled_classes(model):
    """``model`` with its class heads' outputs rolled by one class: the classes of another order."""
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and "class" in name:
                module.weight.copy_(module.weight.roll(1, 0))
                module.bias.copy_(module.bias.roll(1, 0))
    return model


def test_a_trained_teacher_passes_and_its_ap_is_logged(trained_teacher, data, caplog):
    with caplog.at_level("INFO"):
        ap = check_teacher(trained_teacher, TeacherCheck(images=SLICE, min_ap=1.0), data, "teacher.pth")
    assert ap > 5.0  # well clear of the floor: the check can tell it from the two below
    assert not trained_teacher.training  # a frozen teacher stays in eval mode through the check
    assert f"Teacher check: {ap:.1f} AP on the first {SLICE} images of synthetic_val_mini" in caplog.text


def test_a_teacher_with_shuffled_class_heads_is_stopped(trained_teacher, data):
    shuffled = shuffled_classes(copy.deepcopy(trained_teacher))
    assert teacher_slice_ap(shuffled, data, SLICE) < 1.0 < teacher_slice_ap(trained_teacher, data, SLICE)
    with pytest.raises(TeacherCheckError, match="below model.teacher_check.min_ap=1.0") as e:
        check_teacher(shuffled, TeacherCheck(images=SLICE), data, "converted.pth")
    assert "converted.pth" in str(e.value) and "class order" in str(e.value)
    assert "model.teacher_check.images=0" in str(e.value)  # how to skip it


def test_a_random_teacher_is_stopped_and_images_0_turns_the_check_off(data):
    random_teacher = build_tiny_dino(num_queries=30).eval()
    with pytest.raises(TeacherCheckError, match="predicts nothing useful"):
        check_teacher(random_teacher, TeacherCheck(images=SLICE), data, "random.pth")
    assert check_teacher(random_teacher, TeacherCheck(images=0), data, "random.pth") is None


class _NoDetections(torch.nn.Module):
    """A teacher that predicts nothing at all: COCOEvaluator then has no AP (NaN), which is no pass."""

    def forward(self, inputs):
        from detectron2.structures import Boxes, Instances

        return [{"instances": Instances((x["height"], x["width"]), pred_boxes=Boxes(torch.zeros(0, 4)),
                                        scores=torch.zeros(0), pred_classes=torch.zeros(0, dtype=torch.long))}
                for x in inputs]


def test_a_teacher_without_any_detection_is_stopped(data):
    with pytest.raises(TeacherCheckError, match="scores nan AP"):
        check_teacher(_NoDetections(), TeacherCheck(images=SLICE), data, "empty.pth")


def test_train_net_stops_before_the_first_step_without_a_traceback(tmp_path):
    """A random teacher checkpoint through train_net.py: one message, exit status 1, no step taken."""
    cfg = LazyConfig.apply_overrides(LazyConfig.load(os.path.join(ROOT, CONFIG)), SIZES)
    torch.manual_seed(0)
    teacher = tmp_path / "teacher.pth"
    torch.save({"model": instantiate(cfg.model.teacher).state_dict()}, teacher)
    proc = subprocess.run([sys.executable, "train_net.py", "--config-file", CONFIG, "train.max_iter=2",
                           f"train.output_dir={tmp_path / 'out'}", f"model.teacher_weights={teacher}", *FAST,
                           f"model.teacher_check.images={SLICE}"], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "train_net.py: KDDETR: the teacher" in proc.stderr and "Traceback" not in proc.stderr
    metrics = tmp_path / "out" / "metrics.json"  # opened by the writer hook, but no step was taken
    assert not metrics.exists() or metrics.read_text() == ""


def test_every_process_refuses_with_one_message(tmp_path):
    """Two processes (GLOO): the refusal is printed by the processes, not as a traceback, and the run exits 1."""
    cfg = LazyConfig.apply_overrides(LazyConfig.load(os.path.join(ROOT, CONFIG)), SIZES)
    torch.manual_seed(0)
    teacher = tmp_path / "teacher.pth"
    torch.save({"model": instantiate(cfg.model.teacher).state_dict()}, teacher)
    args = ["--num-gpus", "2", "train.max_iter=2", f"train.output_dir={tmp_path / 'out'}",
            f"model.teacher_weights={teacher}", *FAST, f"model.teacher_check.images={SLICE}"]
    proc = subprocess.run([sys.executable, "train_net.py", "--config-file", CONFIG, *args], cwd=ROOT,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"), timeout=600)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "train_net.py (process 0): KDDETR: the teacher" in proc.stderr


@pytest.mark.parametrize("check, message", [
    (dict(image=5), "has no key 'image'"),
    (dict(images=-1), "images must be a whole number >= 0"),
    (dict(images=2.5), "images must be a whole number >= 0"),
    (dict(min_ap=150), "min_ap must be a COCO AP between 0 and 100"),
])
def test_teacher_check_settings_are_checked(check, message):
    with pytest.raises(ValueError, match=message):
        build_tiny_kd(teacher_check=check)
