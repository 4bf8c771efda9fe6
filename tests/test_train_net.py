"""train_net.py end to end on the synthetic data: train, --eval-only, --resume, 2 processes."""
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT
from test_errors import write_user_coco

FAST = [
    "dataloader.train.total_batch_size=2", "dataloader.train.num_workers=0", "dataloader.test.num_workers=0",
    "dataloader.test.dataset.names=synthetic_val_mini", "train.log_period=1", "train.device=cpu",
    "model.num_queries=30", "model.dn_number=10",
]


def run(args, timeout=600):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "train_net.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def ap_row(log):
    rows = re.findall(r"copypaste: ([0-9.]+,[0-9.]+,[0-9.nan,]+)", log)
    assert rows, "no COCO AP table in the log"
    return rows[-1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    log = run(["--config-file", "configs/synthetic/dino_r18.py", "train.max_iter=3", f"train.output_dir={out}", *FAST])
    return out, log


def test_train_three_iterations_logs_eta_and_evaluates(trained):
    out, log = trained
    assert "eta:" in log and "loss_class_dn" in log and "total_loss" in log
    assert os.path.isfile(out / "model_final.pth")
    assert "Evaluation results for bbox" in log
    metrics = [json.loads(line) for line in open(out / "metrics.json")]
    assert [m["iteration"] for m in metrics if "total_loss" in m] == [0, 1, 2]


def test_eval_only_reproduces_the_final_evaluation(trained):
    out, log = trained
    eval_log = run(["--config-file", "configs/synthetic/dino_r18.py", "--eval-only",
                    f"train.init_checkpoint={out / 'model_final.pth'}", f"train.output_dir={out}/eval", *FAST])
    assert ap_row(eval_log) == ap_row(log)


def test_resume_continues_at_the_saved_iteration(trained, tmp_path):
    out, _ = trained
    log = run(["--config-file", "configs/synthetic/dino_r18.py", "--resume", "train.max_iter=5",
               f"train.output_dir={out}", *FAST])
    assert "Starting training from iteration 3" in log
    iters = [json.loads(line)["iteration"] for line in open(out / "metrics.json")]
    assert iters[-2:] == [3, 4] or 4 in iters


def test_two_process_cpu_training(tmp_path):
    log = run(["--config-file", "configs/synthetic/dino_r18.py", "--num-gpus", "2", "train.max_iter=2",
               f"train.output_dir={tmp_path}", *FAST])
    assert "Evaluation results for bbox" in log and "eta:" in log


@pytest.mark.parametrize("argv, machines, expected", [
    ([], 1, "auto"),  # a free port: two runs on one machine do not collide on Detectron2's per-user port
    (["--dist-url", "tcp://127.0.0.1:5000"], 1, "tcp://127.0.0.1:5000"),
    (["--dist-url=tcp://127.0.0.1:5000"], 1, "tcp://127.0.0.1:5000"),
    (["--num-machines", "2"], 2, "default"),  # several machines must agree on one address: Detectron2's
])
def test_rendezvous_address(argv, machines, expected):
    from detectron2.engine import default_argument_parser

    import train_net

    args = default_argument_parser().parse_args(argv)
    assert args.num_machines == machines
    assert train_net.dist_url_of(args, argv) == (args.dist_url if expected == "default" else expected)


def test_user_dataset_from_the_command_line(tmp_path):
    train_json, val_json = write_user_coco(tmp_path, "train"), write_user_coco(tmp_path, "val")
    fast = [a for a in FAST if not a.startswith("dataloader.test.dataset.names")]
    log = run(["--config-file", "configs/synthetic/dino_r18.py", "train.max_iter=2", f"train.output_dir={tmp_path}/o",
               f"user_dataset.train_json={train_json}", f"user_dataset.train_images={tmp_path}/train",
               f"user_dataset.test_json={val_json}", f"user_dataset.test_images={tmp_path}/val", *fast])
    assert "user_dataset: 2 classes" in log and "Evaluation results for bbox" in log


def test_unknown_key_fails_before_training(tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "train_net.py", "--config-file", "configs/synthetic/dino_r18.py",
                           "train.max_iters=3"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0 and "Did you mean: train.max_iter" in proc.stderr


def test_ema_trains_checkpoints_and_evaluates(tmp_path):
    import torch

    log = run(["--config-file", "configs/synthetic/dino_r18.py", "train.max_iter=2", f"train.output_dir={tmp_path}",
               "train.model_ema.enabled=True", "train.model_ema.decay=0.5",
               "train.model_ema.use_ema_for_evaluation=True",
               *FAST])
    assert "Evaluation results for bbox" in log
    ckpt = torch.load(tmp_path / "model_final.pth", map_location="cpu", weights_only=False)
    assert "ema" in ckpt and set(ckpt["ema"]) == set(ckpt["model"])
    differs = [k for k, v in ckpt["model"].items() if v.is_floating_point() and not torch.equal(v, ckpt["ema"][k])]
    assert differs  # the average lags the trained weights
