"""DETRDistill through train_net.py: each component alone for 3 iterations, and KD-DETR +
DETRDistill together with --eval-only reproducing the student's AP."""
import os

import pytest
import torch
from conftest import ROOT
from detectron2.config import LazyConfig, instantiate
from test_train_net import ap_row, run

DETRDISTILL = "configs/synthetic/detrdistill_dino_r50_r18.py"
COMBINED = "configs/synthetic/kd_detr_detrdistill_dino_r50_r18.py"
# the random teachers of these tests would be stopped by their check (tests/test_teacher_check.py)
SIZES = ["model.teacher.num_queries=30", "model.teacher.dn_number=10", "model.student.num_queries=30",
         "model.student.dn_number=10", "model.teacher_check.images=0"]
FAST = ["dataloader.train.total_batch_size=2", "dataloader.train.num_workers=0", "dataloader.test.num_workers=0",
        "dataloader.test.dataset.names=synthetic_val_mini", "train.log_period=1", "train.device=cpu"]
COMPONENTS = {"instance": "loss_pid_cls_0", "feature": "loss_fd_0", "query_contrast": "loss_qcl_0",
              "assignment": "loss_class_tqa_0"}


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    cfg = LazyConfig.apply_overrides(LazyConfig.load(os.path.join(ROOT, DETRDISTILL)), SIZES)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("teacher") / "model_final.pth"
    torch.save({"model": instantiate(cfg.model.teacher).state_dict()}, path)
    return str(path)


@pytest.mark.parametrize("component", list(COMPONENTS))
def test_each_component_alone_trains_three_iterations(component, teacher_ckpt, tmp_path):
    off = [f"model.detrdistill.{c}=null" for c in COMPONENTS if c != component]
    log = run(["--config-file", DETRDISTILL, "train.max_iter=3", "train.eval_period=0", f"train.output_dir={tmp_path}",
               f"model.teacher_weights={teacher_ckpt}", *off, *SIZES, *FAST])
    assert "eta:" in log and COMPONENTS[component] in log and "KDDETR: loaded all" in log
    others = [key for c, key in COMPONENTS.items() if c != component]
    assert not any(key in log for key in others), others
    assert "loss_kd_cls" not in log  # DETRDistill alone


def test_kd_detr_with_detrdistill_trains_and_evaluates(teacher_ckpt, tmp_path):
    sizes = SIZES + ["model.points.0.num=20"]
    out = tmp_path / "kd"
    log = run(["--config-file", COMBINED, "train.max_iter=3", f"train.output_dir={out}",
               f"model.teacher_weights={teacher_ckpt}", *sizes, *FAST])
    assert "loss_kd_cls" in log and all(key in log for key in COMPONENTS.values())
    ckpt = torch.load(out / "model_final.pth", map_location="cpu", weights_only=False)
    assert any(k.startswith("detrdistill.feature.adapter") for k in ckpt["model"])
    assert not any(k.startswith("teacher.") for k in ckpt["model"])
    # the optimizer trains the student *and* DETRDistill's adapter and projection heads
    cfg = LazyConfig.apply_overrides(LazyConfig.load(os.path.join(ROOT, COMBINED)), sizes)
    cfg.model.teacher_weights = teacher_ckpt
    trainable = sum(1 for p in instantiate(cfg.model).parameters() if p.requires_grad)
    n_opt = sum(len(g["params"]) for g in ckpt["trainer"]["optimizer"]["param_groups"])
    assert n_opt == trainable
    eval_log = run(["--config-file", COMBINED, "--eval-only", f"train.init_checkpoint={out / 'model_final.pth'}",
                    f"train.output_dir={out}/eval", *sizes, *FAST])
    assert ap_row(eval_log) == ap_row(log)
