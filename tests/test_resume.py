"""--resume equals the uninterrupted run, iteration by iteration, with augmentation, DINO's
denoising noise and dropout on, for one and two processes, and for a distillation pair (whose
KD-DETR points each process draws from its own per-step stream)."""
import json
import os
import shutil

import pytest
import torch
from conftest import ROOT
from detectron2.config import instantiate
from test_train_distill import SIZES
from test_train_net import FAST, run

from kddetr.config import load_config

CONFIG = "configs/synthetic/dino_r18.py"
PAIR = "configs/synthetic/dino_r50_r18.py"
# random flip + multi-scale resize (the synthetic loader's augmentation), denoising groups on, loader
# workers on; every iteration's own losses in metrics.json, a checkpoint every 5 iterations
SETTINGS = [a for a in FAST if "num_workers" not in a] + [
    "dataloader.train.num_workers=2", "dataloader.test.num_workers=0", "train.metrics_window=1",
    "train.checkpointer.period=5", "train.eval_period=0", "model.dn_number=10", "train.max_iter=10",
]


def per_iteration_losses(out):
    rows = {}
    with open(os.path.join(out, "metrics.json")) as f:
        for line in f:
            m = json.loads(line)
            losses = {k: v for k, v in m.items() if k.startswith("loss_") or k == "total_loss"}
            if losses:
                rows[m["iteration"]] = losses
    return rows


# one process on a single model; two processes on a pair (each process draws its own KD-DETR points); one
# process on a dataset with an unreadable image (skipped where it falls in the stream, never replaced)
@pytest.mark.parametrize("config, gpus, unreadable", [(CONFIG, 1, False), (PAIR, 2, False), (CONFIG, 1, True)])
def test_resume_after_a_kill_equals_the_uninterrupted_run(tmp_path, config, gpus, unreadable):
    settings = SETTINGS
    if unreadable:
        from test_unreadable import _dataset_with_a_broken_image

        settings = [a for a in SETTINGS if "dataset.names" not in a] + _dataset_with_a_broken_image(tmp_path)
    if config == PAIR:  # a (random) teacher checkpoint of the pair's teacher, tiny sizes
        teacher = tmp_path / "teacher.pth"
        torch.save({"model": instantiate(load_config(os.path.join(ROOT, PAIR), SIZES).model.teacher).state_dict()},
                   teacher)
        settings = [a for a in SETTINGS if not a.startswith(("model.num_queries", "model.dn_number"))]
        settings += [*SIZES, f"model.teacher_weights={teacher}"]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    run(["--num-gpus", str(gpus), "--config-file", config, f"train.output_dir={full}", *settings])
    # what a run killed after its checkpoint at iteration 4 leaves behind
    os.makedirs(resumed)
    shutil.copy(full / "model_0000004.pth", resumed)
    (resumed / "last_checkpoint").write_text("model_0000004.pth")
    run(["--num-gpus", str(gpus), "--resume", "--config-file", config, f"train.output_dir={resumed}", *settings])

    expected, got = per_iteration_losses(full), per_iteration_losses(resumed)
    if unreadable:  # the broken image was met (and skipped) before and after the checkpoint
        counts = [json.loads(line).get("unreadable_images") for line in open(full / "metrics.json")]
        assert [c for c in counts if c is not None], "no unreadable image was met"
    assert sorted(got) == list(range(5, 10)), sorted(got)
    assert any(k.endswith("_dn") for k in got[5])  # the denoising groups are part of the comparison
    assert config != PAIR or "loss_kd_cls" in got[5]  # and the points, through the KD terms
    for it in range(5, 10):
        assert got[it] == expected[it], f"iteration {it}: resumed {got[it]} vs uninterrupted {expected[it]}"
