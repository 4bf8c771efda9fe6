"""tools/demo.py's screen: one progress line per stage (with its ETA), a failing stage's last lines."""
import importlib.util
import os

import pytest
from conftest import ROOT


def demo():
    spec = importlib.util.spec_from_file_location("demo", os.path.join(ROOT, "tools", "demo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_progress_is_read_from_the_runs_own_lines():
    progress_of = demo().progress_of
    line = ("[12/07 15:30:50 d2.utils.events]:  eta: 0:03:10  iter: 99  total_loss: 16.55  loss_class_0: 0.4766  "
            "time: 4.7767  lr: 0.000396")
    assert progress_of(line, 400) == "iteration 100/400, eta 0:03:10"
    line = ("[12/07 15:19:31 kddetr.data.backbones]:   ResNet-50 step 50/300: loss 0.597, accuracy over the last "
            "steps 0.49, eta 3.5 min")
    assert progress_of(line, 400) == "pretraining its ResNet-50 backbone (once), step 50/300, eta 3.5 min"
    evaluating = "[d2.evaluation.evaluator]: Start inference on 200 batches"
    assert progress_of(evaluating, 400) == "evaluating"
    assert progress_of("Teacher check: 20.3 AP on the first 50 images of synthetic_val (floor ...)", 1).startswith(
        "teacher checked: 20.3 AP")
    assert progress_of("[d2.engine.defaults]: Full config saved to output/demo/teacher/config.yaml", 400) == ""


def test_a_stage_shows_one_line_and_a_failing_one_its_last_lines(capsys):
    module = demo()
    script = "import sys; print('noise ' * 50); print('eta: 0:00:01  iter: 4  total_loss: 1.0'); sys.exit({})"
    module.step("1/2 fake run", ["-c", script.format(0)], iters=5)
    out = capsys.readouterr().out
    assert "noise" not in out and "1/2 fake run: done in" in out  # the run's own output is not on the screen
    with pytest.raises(SystemExit, match=r"(?s)2/2 fake run failed \(exit 3\).*noise"):
        module.step("2/2 fake run", ["-c", script.format(3)], iters=5)


def test_the_demo_configs_compare_the_two_students_at_equal_settings():
    """The distilled student is the student alone plus KD-DETR: the same model, data, optimizer, schedule and
    iterations; every demo config's learning rate drops inside its own run (the schedule fits its length)."""
    from detectron2.config import LazyConfig
    from omegaconf import OmegaConf

    def load(name):
        return LazyConfig.load(os.path.join(ROOT, "configs", "synthetic", "demo", f"{name}.py"))

    teacher, alone, kd = load("teacher"), load("student_alone"), load("student_kd")
    plain = lambda node: OmegaConf.to_container(node, resolve=True)  # noqa: E731
    assert plain(kd.model.student) == plain(alone.model)
    assert plain(kd.model.teacher) == plain(teacher.model)
    for key in ("dataloader", "optimizer", "lr_multiplier"):
        assert plain(kd[key]) == plain(alone[key]), key
    assert kd.train.max_iter == alone.train.max_iter < teacher.train.max_iter
    for cfg in (teacher, alone, kd):
        milestones = cfg.lr_multiplier.scheduler.milestones
        assert cfg.lr_multiplier.scheduler.num_updates == cfg.train.max_iter
        assert 0 < milestones[0] < cfg.train.max_iter
        assert cfg.train.eval_period == cfg.train.max_iter  # one evaluation, at the end
    assert kd.model.teacher_weights == "output/demo/teacher/model_final.pth"
