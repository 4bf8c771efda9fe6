"""Distillation through train_net.py: train, --eval-only, --resume, 2 processes, export + DefaultPredictor."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import pytest
import torch
from conftest import ROOT, build_tiny_kd, synthetic_batch
from detectron2.config import LazyConfig, instantiate
from test_train_net import ap_row, run

CONFIG = "configs/synthetic/dino_r50_r18.py"
# the random teachers of these tests would be stopped by their check (tests/test_teacher_check.py)
SIZES = ["model.teacher.num_queries=30", "model.teacher.dn_number=10", "model.student.num_queries=30",
         "model.student.dn_number=10", "model.points.0.num=20", "model.teacher_check.images=0"]
FAST = ["dataloader.train.total_batch_size=2", "dataloader.train.num_workers=0", "dataloader.test.num_workers=0",
        "dataloader.test.dataset.names=synthetic_val_mini", "train.log_period=1", "train.device=cpu", *SIZES]


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    """A (random) teacher checkpoint with the config's teacher architecture, as train_net writes it."""
    cfg = LazyConfig.apply_overrides(LazyConfig.load(os.path.join(ROOT, CONFIG)), SIZES)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("teacher") / "model_final.pth"
    torch.save({"model": instantiate(cfg.model.teacher).state_dict(), "iteration": 0}, path)
    return str(path)


@pytest.fixture(scope="module")
def distilled(tmp_path_factory, teacher_ckpt):
    out = tmp_path_factory.mktemp("kd")
    log = run(["--config-file", CONFIG, "train.max_iter=3", "train.checkpointer.period=2", f"train.output_dir={out}",
               f"model.teacher_weights={teacher_ckpt}", *FAST])
    return out, log


def test_distillation_trains_logs_kd_terms_and_evaluates_the_student(distilled):
    out, log = distilled
    assert "eta:" in log and "loss_kd_cls" in log and "loss_kd_giou_0" in log and "loss_class_dn" in log
    assert "KDDETR: loaded all" in log and "Evaluation results for bbox" in log
    ckpt = torch.load(out / "model_final.pth", map_location="cpu", weights_only=False)
    assert not any(k.startswith("teacher.") for k in ckpt["model"])  # student-only checkpoints
    assert any(k.startswith("student.") for k in ckpt["model"])
    assert {"sampler", "seed", "optimizer"} <= set(ckpt["trainer"])
    # the optimizer holds the student's parameters only
    student_params = sum(1 for k in ckpt["model"] if k.startswith("student.") and "running_" not in k
                         and "num_batches" not in k)
    n_opt = sum(len(g["params"]) for g in ckpt["trainer"]["optimizer"]["param_groups"])
    assert 0 < n_opt <= student_params


def test_eval_only_evaluates_the_same_student(distilled, tmp_path):
    out, log = distilled
    # the teacher is neither needed nor built to evaluate the student
    eval_log = run(["--config-file", CONFIG, "--eval-only", f"train.init_checkpoint={out / 'model_final.pth'}",
                    f"model.teacher_weights={tmp_path}/absent.pth", f"train.output_dir={out}/eval", *FAST])
    assert ap_row(eval_log) == ap_row(log)
    # an exported student-only checkpoint evaluates the same
    from kddetr.export import export_student

    cfg = LazyConfig.apply_overrides(LazyConfig.load(os.path.join(ROOT, CONFIG)), SIZES)
    export_student(cfg, str(out / "model_final.pth"), str(tmp_path / "export"))
    eval_log = run(["--config-file", CONFIG, "--eval-only", f"train.init_checkpoint={tmp_path}/export/student.pth",
                    f"train.output_dir={tmp_path}/eval", *FAST])
    assert ap_row(eval_log) == ap_row(log)


def test_resume_restores_iteration_sampler_and_points(distilled, teacher_ckpt, tmp_path):
    out, _ = distilled
    shutil.copy(out / "model_0000001.pth", tmp_path / "model_0000001.pth")
    (tmp_path / "last_checkpoint").write_text("model_0000001.pth")
    log = run(["--config-file", CONFIG, "--resume", "train.max_iter=3", f"train.output_dir={tmp_path}",
               f"model.teacher_weights={teacher_ckpt}", *FAST])
    assert "Starting training from iteration 2" in log
    iters = [json.loads(line)["iteration"] for line in open(tmp_path / "metrics.json") if "total_loss" in line]
    assert iters == [2]


def test_trainer_state_restores_the_sample_stream_and_the_points(monkeypatch):
    """The sampler position and the seed of the per-step points are part of the trainer's checkpoint."""
    from kddetr.data.samplers import ResumableTrainingSampler
    from kddetr.engine import DistillTrainer

    model = build_tiny_kd().train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
    sampler = ResumableTrainingSampler(50, seed=7)
    trainer = DistillTrainer(model, [synthetic_batch(2)], opt, device="cpu", seed=3, sampler=sampler,
                             samples_per_iter=4)
    trainer.iter = 5
    state = trainer.state_dict()
    stream = iter(sampler)
    uninterrupted = [next(stream) for _ in range(6 * 4 + 8)][6 * 4:]
    trainer.iter = 6  # the first iteration after the checkpoint
    points = trainer.step_points()

    other = ResumableTrainingSampler(50, seed=123)
    resumed = DistillTrainer(model, [synthetic_batch(2)], opt, device="cpu", seed=99, sampler=other,
                             samples_per_iter=4)
    resumed.load_state_dict(state)
    assert resumed.iter == 5 and resumed.seed == 3
    stream = iter(other)
    assert [next(stream) for _ in range(8)] == uninterrupted
    resumed.iter = 6
    torch.testing.assert_close(resumed.step_points(), points)
    resumed.iter = 7
    assert not torch.equal(resumed.step_points()["general"], points["general"])  # a new draw every step
    # each process draws its own points (derived from its rank, so nothing per rank needs saving)
    from detectron2.utils import comm

    resumed.iter = 6
    monkeypatch.setattr(comm, "get_rank", lambda: 1)
    assert not torch.equal(resumed.step_points()["general"], points["general"])


def test_two_process_cpu_distillation(tmp_path, teacher_ckpt):
    log = run(["--config-file", CONFIG, "--num-gpus", "2", "train.max_iter=2", f"train.output_dir={tmp_path}",
               f"model.teacher_weights={teacher_ckpt}", *FAST])
    assert "World size: 2" in log or "world_size" in log.lower() or "Evaluation results for bbox" in log
    assert "loss_kd_cls" in log and "Evaluation results for bbox" in log


def test_export_and_default_predictor(distilled, tmp_path):
    from detectron2.config import get_cfg
    from detectron2.engine import DefaultPredictor

    from kddetr.config import add_kddetr_config
    from kddetr.export import export_student

    out, _ = distilled
    cfg = LazyConfig.apply_overrides(LazyConfig.load(os.path.join(ROOT, CONFIG)), SIZES)
    path = export_student(cfg, str(out / "model_final.pth"), str(tmp_path / "export"))
    d2 = get_cfg()
    add_kddetr_config(d2)
    d2.merge_from_file(path)
    predictor = DefaultPredictor(d2)
    batch = synthetic_batch(1, size=128, with_targets=False)
    bgr = batch[0]["image"].permute(1, 2, 0).numpy()[:, :, ::-1].copy()
    instances = predictor(bgr)["instances"]
    assert instances.image_size == (128, 128) and len(instances) > 0
    # the served student is the trained one: same predictions as the student inside the checkpoint
    ckpt = torch.load(out / "model_final.pth", map_location="cpu", weights_only=False)["model"]
    student = instantiate(cfg.model.student).eval()
    student.load_state_dict({k[len("student."):]: v for k, v in ckpt.items() if k.startswith("student.")})
    with torch.no_grad():
        ref = student([{"image": torch.as_tensor(bgr[:, :, ::-1].copy()).permute(2, 0, 1), "height": 128,
                        "width": 128}])[0]["instances"]
    torch.testing.assert_close(instances.scores, ref.scores)
    # and tools/visualize.py draws them
    png = tmp_path / "vis.png"
    cv2.imwrite(str(tmp_path / "img.png"), bgr)
    proc = subprocess.run([sys.executable, "tools/visualize.py", "--config", path, "--input", str(tmp_path / "img.png"),
                     "--output", str(png), "--score-threshold", "0"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert cv2.imread(str(png)).shape[0] == 3 * 128
    # several models over the same test images: one labelled row per model (make demo's picture)
    proc = subprocess.run([sys.executable, "tools/visualize.py", "--config", path, "--config", path, "--label", "a",
                           "--label", "b", "--images", "2", "--output", str(png)], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert cv2.imread(str(png)).shape[:2] == (2 * (36 + 3 * 128 + 8), 2 * (3 * 128 + 8))
    proc = subprocess.run([sys.executable, "tools/visualize.py", "--config", path, "--config", path, "--label", "a",
                           "--output", str(png)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "give one per --config" in proc.stderr


def test_distillation_config_without_teacher_fails_clearly(tmp_path):
    proc = subprocess.run([sys.executable, "train_net.py", "--config-file", CONFIG, "train.max_iter=1",
                           f"model.teacher_weights={tmp_path}/missing.pth", f"train.output_dir={tmp_path}", *FAST],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode != 0 and "missing.pth' (model.teacher_weights) does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_kddetr_is_a_registered_meta_architecture(tmp_path):
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from omegaconf import OmegaConf

    from kddetr.config import add_kddetr_config
    from kddetr.distill import KDDETR

    cfg = LazyConfig.apply_overrides(LazyConfig.load(os.path.join(ROOT, CONFIG)), SIZES)
    cfg.model.teacher_weights, cfg.model.allow_untrained_teacher = "", True
    LazyConfig.save(OmegaConf.create({"model": cfg.model}), str(tmp_path / "kd.yaml"))
    d2 = get_cfg()
    add_kddetr_config(d2)
    d2.MODEL.META_ARCHITECTURE, d2.MODEL.DEVICE = "KDDETR", "cpu"
    d2.MODEL.KDDETR.MODEL_CONFIG = str(tmp_path / "kd.yaml")
    model = build_model(d2)
    assert isinstance(model, KDDETR) and not model.teacher.training


def test_export_tool_serves_a_single_model_config(teacher_ckpt, tmp_path):
    """A teacher (or a student trained alone) is exported and served like a distilled student
    (make demo draws all three); a distillation checkpoint given to it is refused by name."""
    sizes = ["model.num_queries=30", "model.dn_number=10"]
    proc = subprocess.run([sys.executable, "tools/export_student.py", "--config-file", "configs/synthetic/dino_r50.py",
                           "--checkpoint", teacher_ckpt, "--output-dir", str(tmp_path), *sizes],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    png = tmp_path / "vis.png"
    proc = subprocess.run([sys.executable, "tools/visualize.py", "--config", str(tmp_path / "predictor.yaml"),
                           "--output", str(png), "--score-threshold", "0"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and png.is_file(), proc.stderr[-2000:]
    proc = subprocess.run([sys.executable, "tools/export_student.py", "--config-file", "configs/synthetic/dino_r18.py",
                           "--checkpoint", teacher_ckpt, "--output-dir", str(tmp_path), *sizes],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode != 0 and "Export with the config the checkpoint was trained with" in proc.stderr


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_tool_writes_a_graph_that_matches_pytorch(distilled, tmp_path, fmt):
    """tools/export_student.py --format onnx|torchscript on a trained pair checkpoint: the graph and
    its contract are written, and the tool's own parity check runs."""
    out, _ = distilled
    proc = subprocess.run([sys.executable, "tools/export_student.py", "--config-file", CONFIG, "--checkpoint",
                           str(out / "model_final.pth"), "--output-dir", str(tmp_path), "--format", fmt, *SIZES],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    suffix = {"onnx": ".onnx", "torchscript": ".ts"}[fmt]
    assert (tmp_path / f"student{suffix}").stat().st_size > 0
    contract = json.loads((tmp_path / f"student{suffix}.json").read_text())
    assert contract["input"]["shape"] == [1, 3, 128, 128]  # the synthetic test images, after the test resize
    line = next(x for x in proc.stdout.splitlines() if x.startswith("parity with PyTorch at 128 x 128 on "))
    assert ".png: max |score| diff" in line and "labels equal 100%" in line  # a real test image was used


def test_export_tool_refuses_a_graph_of_another_pair(distilled, tmp_path):
    out, _ = distilled
    proc = subprocess.run([sys.executable, "tools/export_student.py", "--config-file", CONFIG, "--checkpoint",
                           str(out / "model_final.pth"), "--output-dir", str(tmp_path), "--format", "onnx"],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode != 0 and "does not match" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "student.onnx").exists()
