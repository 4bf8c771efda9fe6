"""--resume equals the uninterrupted run, iteration by iteration, with augmentation, DINO's
denoising noise and dropout on, for one and two processes."""
import json
import os
import shutil

import pytest
from test_train_net import FAST, run

CONFIG = "configs/synthetic/dino_r18.py"
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


@pytest.mark.parametrize("gpus", [1, 2])
def test_resume_after_a_kill_equals_the_uninterrupted_run(tmp_path, gpus):
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    run(["--num-gpus", str(gpus), "--config-file", CONFIG, f"train.output_dir={full}", *SETTINGS])
    # what a run killed after its checkpoint at iteration 4 leaves behind
    os.makedirs(resumed)
    shutil.copy(full / "model_0000004.pth", resumed)
    (resumed / "last_checkpoint").write_text("model_0000004.pth")
    run(["--num-gpus", str(gpus), "--resume", "--config-file", CONFIG, f"train.output_dir={resumed}", *SETTINGS])

    expected, got = per_iteration_losses(full), per_iteration_losses(resumed)
    assert sorted(got) == list(range(5, 10)), sorted(got)
    assert any(k.endswith("_dn") for k in got[5])  # the denoising groups are part of the comparison
    for it in range(5, 10):
        assert got[it] == expected[it], f"iteration {it}: resumed {got[it]} vs uninterrupted {expected[it]}"
