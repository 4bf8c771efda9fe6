"""Every synthetic pair config distils for 3 iterations through train_net.py, and --eval-only
reproduces the student's AP from the written checkpoint."""
import os

import pytest
import torch
from conftest import ROOT
from detectron2.config import LazyConfig, instantiate
from test_train_net import ap_row, run

# random teachers: their check (tests/test_teacher_check.py) would stop the run
SMALL = ["model.teacher.num_queries=30", "model.student.num_queries=30", "model.points.0.num=20",
         "model.teacher_check.images=0"]
FAST = ["dataloader.train.total_batch_size=2", "dataloader.train.num_workers=0", "dataloader.test.num_workers=0",
        "dataloader.test.dataset.names=synthetic_val_mini", "train.log_period=1", "train.device=cpu"]
PAIRS = {
    "configs/synthetic/dab_detr_r50_r18.py": SMALL,
    "configs/synthetic/deformable_detr_r50_r18.py": SMALL,
    "configs/synthetic/dab_deformable_detr_r50_r18.py": SMALL,
    "configs/synthetic/conditional_detr_r50_r18.py": SMALL,
    "configs/synthetic/dino_r50_deformable_detr_two_stage_r18.py": SMALL + ["model.teacher.dn_number=10"],
}


@pytest.mark.parametrize("config", list(PAIRS))
def test_pair_distils_three_iterations_and_evaluates(config, tmp_path):
    sizes = PAIRS[config]
    cfg = LazyConfig.apply_overrides(LazyConfig.load(os.path.join(ROOT, config)), sizes)
    torch.manual_seed(0)
    teacher = tmp_path / "teacher.pth"
    torch.save({"model": instantiate(cfg.model.teacher).state_dict()}, teacher)
    out = tmp_path / "kd"
    log = run(["--config-file", config, "train.max_iter=3", f"train.output_dir={out}",
               f"model.teacher_weights={teacher}", *sizes, *FAST])
    assert "eta:" in log and "loss_kd_cls" in log and "KDDETR: loaded all" in log
    eval_log = run(["--config-file", config, "--eval-only", f"train.init_checkpoint={out / 'model_final.pth'}",
                    f"train.output_dir={out}/eval", *sizes, *FAST])
    assert ap_row(eval_log) == ap_row(log)
