"""Nothing lost, nothing silent: a blow-up stops before the optimizer step and leaves finite
checkpoints; evaluation and export load strictly; corrupt checkpoints are named."""
import glob
import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from test_train_net import FAST

from kddetr.checkpoint import CheckpointError, FiniteCheckpointer, non_finite_tensors, read_state_dict
from kddetr.config import load_config
from kddetr.engine import Trainer


def run_train_net(args, cwd=ROOT):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "train_net.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env)
    return proc.returncode, proc.stdout + proc.stderr


def test_lr_blow_up_stops_before_the_step_and_leaves_finite_checkpoints(tmp_path):
    code, log = run_train_net(["--config-file", "configs/synthetic/dino_r18.py", "optimizer.lr=1e6", "train.max_iter=8",
                               "train.checkpointer.period=1", f"train.output_dir={tmp_path}", *FAST])
    assert code == 1 and "Traceback" not in log, log[-3000:]  # a refusal: one message
    assert "train_net.py: Training stopped at iteration" in log
    assert "before the optimizer step (the weights were not changed)" in log, log[-3000:]
    assert "The last good checkpoint is" in log and "--resume" in log
    checkpoints = sorted(glob.glob(str(tmp_path / "model_*.pth")))
    assert checkpoints, "the first steps (before the blow-up) are checkpointed"
    for path in checkpoints:
        assert non_finite_tensors(read_state_dict(path)) == [], path
    last = (tmp_path / "last_checkpoint").read_text().strip()
    assert os.path.join(str(tmp_path), last) in checkpoints and f"The last good checkpoint is {tmp_path / last}" in log


class SqrtModel(torch.nn.Module):
    """loss = sqrt(w) + w: finite at w = 0, with an infinite gradient there."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.v = torch.nn.Parameter(torch.ones(()))

    def forward(self, data):
        return {"loss_sqrt": torch.sqrt(self.w) + self.v, "loss_v": self.v * 2}


def test_non_finite_gradient_is_caught_before_the_step_and_weights_stay():
    model = SqrtModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, [[{}]] * 3, opt, clip_grad_params=dict(max_norm=0.1, norm_type=2), device="cpu")
    trainer.iter = 0
    with pytest.raises(FloatingPointError, match=r"iteration 0, before the optimizer step .* gradient norm is inf"
                       r".* every loss term is finite .*No checkpoint was written yet"):
        trainer.run_step()
    assert model.w.item() == 0.0 and model.v.item() == 1.0  # nothing applied


def test_non_finite_loss_term_is_named():
    class NaNLoss(SqrtModel):
        def forward(self, data):
            return {"loss_ok": self.v * 1.0, "loss_bad": self.v * float("nan")}

    model = NaNLoss()
    trainer = Trainer(model, [[{}]] * 3, torch.optim.SGD(model.parameters(), lr=0.1), device="cpu")
    trainer.iter = 7
    with pytest.raises(FloatingPointError, match=r"iteration 7, before the optimizer step .*: non-finite loss terms: "
                       r"loss_bad\. "):
        trainer.run_step()
    assert model.v.item() == 1.0


def test_checkpointer_never_writes_non_finite_weights(tmp_path):
    model = SqrtModel()
    checkpointer = FiniteCheckpointer(model, str(tmp_path))
    checkpointer.save("model_0000000")
    with torch.no_grad():
        model.v.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"Not writing checkpoint 'model_0000001': 1 model tensors .*v\)"
                       r".*last good checkpoint is .*model_0000000.pth"):
        checkpointer.save("model_0000001")
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000000.pth"]


def model_checkpoint(tmp_path, config, *opts, name="model.pth", prefix=""):
    """A checkpoint of the model of ``config`` (untrained: only names and shapes matter here)."""
    from detectron2.config import instantiate

    cfg = load_config(os.path.join(ROOT, config), opts)
    model = instantiate(cfg.model)
    path = tmp_path / name
    torch.save({"model": {prefix + k: v for k, v in model.state_dict().items()}}, path)
    return str(path)


@pytest.mark.parametrize("source, opts, expected", [
    ("configs/synthetic/dino_r50.py", (), r"other shapes \(checkpoint vs model; first: backbone"),
    ("configs/synthetic/dino_r18.py", ("model.num_classes=3",), r"other shapes .*class_head.0.(weight|bias) \(3,"),
    ("configs/synthetic/dab_detr_r18.py", (), r"lacks \d+ of the model's \d+ tensors"),
])
def test_eval_only_refuses_another_models_checkpoint(tmp_path, source, opts, expected):
    from detectron2.config import instantiate

    import train_net

    path = model_checkpoint(tmp_path, source, *opts)
    model = instantiate(load_config(os.path.join(ROOT, "configs/synthetic/dino_r18.py")).model)
    with pytest.raises(ValueError, match=rf"Checkpoint '{path}' \(train.init_checkpoint\) does not match the DINO "
                       rf"of the config: it .*{expected}"):
        train_net.load_for_evaluation(model, path)


def test_eval_only_refuses_a_mismatched_checkpoint_and_a_missing_one_from_the_command_line(tmp_path):
    path = model_checkpoint(tmp_path, "configs/synthetic/dino_r50.py")
    code, log = run_train_net(["--config-file", "configs/synthetic/dino_r18.py", "--eval-only",
                               f"train.init_checkpoint={path}", f"train.output_dir={tmp_path}/o", *FAST])
    assert code != 0 and "does not match the DINO of the config" in log and "Evaluation results" not in log
    assert log.rstrip().splitlines()[-1].startswith("train_net.py: Checkpoint '")  # the message, last
    code, log = run_train_net(["--config-file", "configs/synthetic/dino_r18.py", "--eval-only",
                               f"train.output_dir={tmp_path}/o", *FAST])
    assert code != 0 and "--eval-only needs the weights to evaluate: set train.init_checkpoint=" in log
    assert "Traceback" not in log  # refused before anything is built


def test_eval_only_of_a_pair_config_loads_the_student_strictly(tmp_path):
    from detectron2.config import instantiate

    import train_net

    cfg = load_config(os.path.join(ROOT, "configs/synthetic/dino_r50_r18.py"))
    student = instantiate(cfg.model.student)
    good = tmp_path / "kd.pth"
    torch.save({"model": {"student." + k: v for k, v in student.state_dict().items()}}, good)
    train_net.load_for_evaluation(student, str(good))  # a distillation checkpoint of this pair
    wrong = model_checkpoint(tmp_path, "configs/synthetic/dino_r50.py", name="kd_r50.pth", prefix="student.")
    with pytest.raises(ValueError, match="does not match the DINO of the config"):
        train_net.load_for_evaluation(student, wrong)


def test_export_refuses_a_checkpoint_of_another_pair(tmp_path):
    from kddetr.export import export_student

    cfg = load_config(os.path.join(ROOT, "configs/synthetic/dino_r50_r18.py"))
    wrong = model_checkpoint(tmp_path, "configs/synthetic/dino_r50.py", name="kd_r50.pth", prefix="student.")
    with pytest.raises(ValueError, match=r"'.*kd_r50.pth' \(--checkpoint\) does not match the DINO of the config: it "
                       r"has \d+ with other shapes .*Export with the config the checkpoint was trained with"):
        export_student(cfg, wrong, str(tmp_path / "export"))
    assert not (tmp_path / "export" / "student.pth").exists()


def test_corrupt_checkpoint_names_the_file_and_the_key(tmp_path):
    good = model_checkpoint(tmp_path, "configs/synthetic/dino_r18.py")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(open(good, "rb").read()[:5000])
    with pytest.raises(ValueError, match=rf"Checkpoint '{truncated}' \(model.teacher_weights\) cannot be read: "
                       r".*truncated or corrupt"):
        read_state_dict(str(truncated), "model.teacher_weights")
    code, log = run_train_net(["--config-file", "configs/synthetic/dino_r18.py", "--eval-only",
                               f"train.init_checkpoint={truncated}", f"train.output_dir={tmp_path}/o", *FAST])
    assert code != 0 and f"Checkpoint '{truncated}' (train.init_checkpoint) cannot be read" in log


def test_a_checkpoint_that_is_not_a_state_dict_is_named(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match=rf"'{path}' \(train.init_checkpoint\) holds a list, not a state dict"):
        read_state_dict(str(path), "train.init_checkpoint")


def test_seeded_map_dataset_refuses_a_mapper_that_returns_none():
    from kddetr.data.samplers import SampleIndex, SeededMapDataset

    data = SeededMapDataset([{"a": 1}, {"a": 2}], lambda d: d if d["a"] == 1 else None)
    assert data[SampleIndex(0, seed=3, position=7)] == {"a": 1}
    with pytest.raises(ValueError, match="returned None for sample 1"):
        data[1]


def test_a_checkpoint_of_a_frozen_bn_backbone_loads_into_a_bn_one():
    """A FrozenBatchNorm2d built as such (norm="FrozenBN": the COCO configs', detrex's) keeps no
    ``num_batches_tracked``; its checkpoint loads into the same model with norm="BN" (the synthetic
    configs'), every tensor it has used, while a missing BN statistic is still refused."""
    from detectron2.modeling.backbone.resnet import BasicStem, ResNet

    from kddetr.checkpoint import load_strict, state_dict_problems

    def r18(norm):
        torch.manual_seed(0)
        return ResNet(BasicStem(3, 64, norm=norm), ResNet.make_default_stages(18, norm=norm), out_features=["res5"])

    frozen = r18("FrozenBN").state_dict()
    model = r18("BN")
    counters = [k for k in model.state_dict() if k.endswith("num_batches_tracked")]
    assert counters and not any(k in frozen for k in counters)
    frozen = {k: v + 1 if v.is_floating_point() else v for k, v in frozen.items()}
    assert load_strict(model, "frozen.pth", frozen) == 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, frozen[k]) if k in frozen else k in counters, k
    del frozen["stem.conv1.norm.running_mean"]
    with pytest.raises(CheckpointError, match=r"lacks 1 of the model's \d+ tensors "
                       r"\(first: stem.conv1.norm.running_mean\)"):
        load_strict(model, "frozen.pth", frozen)
    # only BatchNorm's own counter is exempt, not a tensor whose name merely ends like it
    assert state_dict_problems({"head.my_num_batches_tracked": torch.zeros(1)}, {})


def test_a_non_finite_matching_cost_is_named_and_stops_in_the_shared_check(caplog):
    """NaN predictions reach the Hungarian matcher before the trainer's check: instead of scipy's bare
    ValueError (on this process only), the log names the matcher and the layer, and the layer's loss is
    non-finite, so the trainer's check (reduced over the processes) stops every process at this step."""
    from conftest import build_tiny_dino, synthetic_batch

    from kddetr.modeling.seam import DecoderOutput

    model = build_tiny_dino()
    targets = model.prepare_targets(synthetic_batch(2))
    logits, boxes = torch.randn(2, 2, 30, 6), torch.rand(2, 2, 30, 4) * 0.5 + 0.25
    logits[0, 1, 3, 2] = float("nan")  # layer 0, image 1
    with caplog.at_level("WARNING"):
        losses = model.criterion.layer_losses(DecoderOutput(logits, boxes, logits), targets, torch.tensor(1.0))
    assert re.search(r"HungarianMatcher: the 30 x \d+ cost matrix holds \d+ non-finite values \(NaN or inf\) of "
                     r"loss_class_0", caplog.text), caplog.text
    assert not torch.isfinite(losses["loss_class_0"]) and torch.isfinite(losses["loss_class"])


class _NaNOnRank1(SqrtModel):
    """A finite loss on process 0, a NaN term on process 1."""

    def forward(self, data):
        from detectron2.utils import comm

        return {"loss_ok": self.v * 1.0, "loss_bad": self.v * (float("nan") if comm.get_rank() == 1 else 1.0)}


def _one_process_step(out_dir):
    """One training step in each process of a two-process GLOO group; each writes how it ended."""
    from detectron2.utils import comm

    from kddetr.errors import NonFiniteError

    model = _NaNOnRank1()
    trainer = Trainer(model, [[{}]] * 3, torch.optim.SGD(model.parameters(), lr=0.1), device="cpu")
    trainer.iter = 4
    try:
        trainer.run_step()
        ended = "stepped"
    except NonFiniteError as e:
        ended = str(e)
    with open(os.path.join(out_dir, f"rank{comm.get_rank()}.txt"), "w") as f:
        f.write(ended)
    comm.synchronize()  # both have written before either exits (the launcher stops the rest at the first exit)
    if ended != "stepped":
        raise SystemExit(1)  # as train_net.py's processes end on a refusal


def test_every_process_stops_at_the_same_step_when_one_has_a_non_finite_loss(tmp_path):
    """Only process 1's loss is NaN: both stop before the optimizer step, promptly, with the same message
    (without the reduced flags process 0 would step on and wait in the next collective)."""
    script = ("import sys; sys.path[:0] = ['tests', 'projects/KDDETR']; import test_reliability as t; "
              "from detectron2.engine import launch; "
              f"launch(t._one_process_step, 2, dist_url='auto', args=({str(tmp_path)!r},))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode != 0, proc.stderr[-3000:]  # both processes exited non-zero (below: with the message)
    ends = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert ends[0] == ends[1] and "iteration 4, before the optimizer step" in ends[0]
    assert "non-finite loss terms: loss_bad (on at least one of the processes)" in ends[0]
