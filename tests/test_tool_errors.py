"""The new tools' refusals: each names the problem and exits non-zero before doing any work."""
import os
import subprocess
import sys

import pytest
from conftest import ROOT


def run(args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))


def test_export_size_is_refused_for_the_checkpoint_format(tmp_path):
    proc = run(["tools/export_student.py", "--config-file", "configs/synthetic/dino_r50_r18.py", "--checkpoint",
                str(tmp_path / "x.pth"), "--output-dir", str(tmp_path), "--size", "64", "64"])
    assert proc.returncode != 0 and "--size sets the input size of an onnx/torchscript graph" in proc.stderr


def test_benchmark_inference_refuses_an_ap_of_an_unmeasured_config(tmp_path):
    proc = run(["tools/benchmark_inference.py", "--config", "configs/synthetic/dino_r18.py", "--ap", "dino_r50=1",
                "--output", str(tmp_path)])
    assert proc.returncode != 0 and "no measured config is named dino_r50" in proc.stderr


def test_benchmark_inference_refuses_a_config_listed_twice(tmp_path):
    proc = run(["tools/benchmark_inference.py", "--config", "configs/synthetic/dino_r18.py", "--config",
                "configs/synthetic/dino_r18.py", "--output", str(tmp_path)])
    assert proc.returncode != 0 and "a config is listed twice" in proc.stderr


def test_benchmark_kd_fast_students_refuses_the_family_arms(tmp_path):
    proc = run(["studies/benchmark_kd.py", "--fast-students", "--per-image", "--output", str(tmp_path)])
    assert proc.returncode != 0 and "drop --per-image" in proc.stderr


def test_overfit_batch_refuses_a_distillation_config_and_runs_a_detector(tmp_path):
    proc = run(["studies/overfit_batch.py", "--config-file", "configs/synthetic/dab_detr_r50_r18.py"])
    assert proc.returncode != 0 and "give a single-model config" in proc.stderr
    small = ["--steps", "3", "--every", "1", "dataloader.train.total_batch_size=2", "model.num_queries=20"]
    runs = [run(["studies/overfit_batch.py", "--config-file", "configs/synthetic/dab_detr_r18.py", *small])
            for _ in range(2)]
    assert all(p.returncode == 0 for p in runs), runs[0].stderr[-2000:]
    steps = [[ln.split("(")[0] for ln in p.stdout.splitlines() if ln.startswith("step")] for p in runs]
    assert len(steps[0]) == 3 and "loss_giou" in steps[0][0]
    assert steps[0] == steps[1]  # the same batch and initialisation: the same losses (timings aside)


def test_benchmark_kd_gives_a_teacher_it_trains_the_shared_overrides():
    """e.g. ``train.init_checkpoint=""`` reruns a study from scratch, teacher included; a pair's
    ``model.*`` keys would not exist in the teacher's config."""
    sys.path.insert(0, os.path.join(ROOT, "studies"))
    import benchmark_kd

    opts = ['train.init_checkpoint=""', "model.loss.normalization=per_image", "optimizer.lr=1e-4"]
    assert benchmark_kd.teacher_opts(opts) == ['train.init_checkpoint=""', "optimizer.lr=1e-4"]


def test_benchmark_kd_layer_compression_is_dab_detrs_own_study(tmp_path):
    """--layer-compression trains only the DAB-DETR Table 3 students (the family's own arms are another
    study, with its own teacher record): other families and arms are refused, and its first run is the
    2/2 student alone."""
    for extra, message in ((["--family", "dino"], "drop --family dino"), (["--per-image"], "drop --per-image"),
                           (["--fast-students"], "run one at a time")):
        proc = run(["studies/benchmark_kd.py", "--layer-compression", *extra, "--output", str(tmp_path)])
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-1000:]
    (tmp_path / "teacher").mkdir()
    proc = run(["studies/benchmark_kd.py", "--layer-compression", "--rebuild", "--seeds", "0",
                "--output", str(tmp_path)])
    assert proc.returncode != 0
    assert "no record" in proc.stderr and "dab_detr_r18_enc2_dec2_seed0/metrics.json" in proc.stderr, proc.stderr


def test_benchmark_kd_detrdistill_names_the_families_that_have_it(tmp_path):
    """DETRDistill's synthetic configs exist for its paper's families (and DINO), not for DAB-DETR."""
    proc = run(["studies/benchmark_kd.py", "--family", "dab_detr", "--detrdistill", "--rebuild", "--seeds", "0",
                "--output", str(tmp_path)])
    assert proc.returncode != 0
    assert "exist for: conditional_detr, deformable_detr, dino" in proc.stderr, proc.stderr[-1000:]


def test_detrex_dab_detr_needs_a_detrex_checkout(tmp_path):
    proc = run(["studies/detrex_dab_detr.py", "--detrex-src", str(tmp_path)])
    assert proc.returncode != 0 and "clone github.com/IDEA-Research/detrex" in proc.stderr


def test_benchmark_kd_family_all_keeps_the_distillers_each_family_has():
    sys.path.insert(0, os.path.join(ROOT, "studies"))
    import benchmark_kd

    for family in benchmark_kd.FAMILIES:  # every family has its three configs
        for config, _ in benchmark_kd.family_arms(family, detrdistill=True, skip_missing=True).values():
            assert os.path.isfile(os.path.join(ROOT, config)), config
    arms = {f: benchmark_kd.family_arms(f, detrdistill=True, skip_missing=True) for f in benchmark_kd.FAMILIES}
    assert [f for f in arms if benchmark_kd.DD in arms[f]] == ["dino", "deformable_detr", "conditional_detr", "rtdetr"]
    for config, _ in benchmark_kd.COMPRESSED.values():
        assert os.path.isfile(os.path.join(ROOT, config)), config


def test_probe_points_compares_a_students_predictions_with_the_teachers(tmp_path):
    import torch
    from detectron2.config import instantiate

    from kddetr.config import load_config

    pair = "configs/synthetic/dab_deformable_detr_r50_r18.py"
    untrained = ['model.teacher_weights=""', "model.allow_untrained_teacher=True"]
    student = load_config(os.path.join(ROOT, "configs/synthetic/dab_deformable_detr_r18.py")).model
    torch.save({"model": instantiate(student).state_dict()}, tmp_path / "student.pth")
    proc = run(["studies/probe_points.py", "--config-file", pair, "--images", "2", "--size", "96",
                "--student", str(tmp_path / "student.pth"), *untrained])
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [ln.split("|")[1:-1] for ln in proc.stdout.splitlines() if ln.startswith("| kd_")]
    assert [r[0].strip() for r in rows] == ["kd_general", "kd_specific"] * 2
    for r in rows[2:]:  # box queries: both agreement columns and both distances to the reference box
        assert all(0.0 <= float(v) <= 2.0 for v in r[1:])
    # --class-terms: value / gradient norm of each class term, every one pulling (untrained student)
    proc = run(["studies/probe_points.py", "--config-file", pair, "--images", "2", "--size", "96", "--class-terms",
                *untrained])
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [ln.split("|")[2:-1] for ln in proc.stdout.splitlines() if ln.startswith("| kd_") and " / " in ln]
    assert len(rows) == 2 and all(len(r) == 3 for r in rows)
    assert all(float(v) > 0 for r in rows for cell in r for v in cell.split(" / "))
    # a checkpoint of another model is refused, naming the flag
    torch.save({"model": {"backbone.x": torch.zeros(1)}}, tmp_path / "other.pth")
    proc = run(["studies/probe_points.py", "--config-file", pair, "--student", str(tmp_path / "other.pth"), *untrained])
    assert proc.returncode != 0 and "--student" in proc.stderr


def test_probe_points_agreement_is_zero_for_identical_predictions_and_references():
    import torch

    sys.path.insert(0, os.path.join(ROOT, "studies"))
    import probe_points

    from kddetr.modeling.seam import DecoderOutput

    g = torch.Generator().manual_seed(0)
    boxes = torch.cat([torch.rand(1, 2, 5, 2, generator=g) * 0.5 + 0.25, torch.full((1, 2, 5, 2), 0.2)], -1)
    logits = torch.randn(1, 2, 5, 3, generator=g)
    same = DecoderOutput(logits, boxes, torch.zeros(1, 2, 5, 8))
    ref = torch.logit(boxes[-1])
    assert all(float(v) < 1e-5 for v in probe_points.agreement(same, same, ref))
    shifted = DecoderOutput(logits, boxes + torch.tensor([0.3, 0.0, 0.0, 0.0]), torch.zeros(1, 2, 5, 8))
    l1, giou, t_ref, s_ref = probe_points.agreement(same, shifted, ref)
    assert abs(float(l1) - 0.3 / 4) < 1e-5 and float(giou) > 0.5 and float(t_ref) < 1e-5 and float(s_ref) > 0.5
    # a 2-D reference (embedding families' points): the two agreement columns only
    assert len(probe_points.agreement(same, same, ref[..., :2])) == 2


def test_detrex_dab_detr_refuses_our_group_norm(tmp_path):
    """detrex's DAB-DETR has no norm after its projection: the comparison needs model.input_norm_groups=0."""
    model_file = tmp_path / "projects" / "dab_detr" / "modeling" / "dab_detr.py"
    model_file.parent.mkdir(parents=True)
    model_file.write_text("")  # checked before detrex is imported
    proc = run(["studies/detrex_dab_detr.py", "--detrex-src", str(tmp_path)])
    assert proc.returncode != 0 and "add model.input_norm_groups=0" in proc.stderr, proc.stderr[-800:]


def test_probe_single_scale_refuses_a_multi_scale_config(tmp_path):
    proc = run(["studies/probe_single_scale.py", "--config-file", "configs/synthetic/dino_r18.py", "--checkpoint",
                str(tmp_path / "x.pth")])
    assert proc.returncode != 0 and "give a DAB-DETR or Conditional DETR single-model config" in proc.stderr


def test_probe_single_scale_refuses_a_missing_checkpoint(tmp_path):
    proc = run(["studies/probe_single_scale.py", "--config-file", "configs/synthetic/dab_detr_r18.py", "--checkpoint",
                str(tmp_path / "x.pth")])
    assert proc.returncode != 0 and "x.pth" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-800:]


def test_benchmark_kd_refuses_to_reuse_a_run_of_another_distillation_loss(tmp_path):
    """A finished run trained before a default changed is not counted under its arm's name."""
    from detectron2.config import LazyConfig

    from kddetr.config import load_config, loss_differences

    pair = "configs/synthetic/dino_r50_r18.py"
    authors = ["model.loss.class_term=softmax", "model.loss.normalization=authors"]
    LazyConfig.save(load_config(os.path.join(ROOT, pair), authors), str(tmp_path / "config.yaml"))
    # compared as the loss resolves them: the authors' sum's default weight 1 and T 10, the default's 0.5 and 1
    assert loss_differences(str(tmp_path), pair) == ["normalization: authors -> per_image",
                                                     "class_term: softmax -> sigmoid", "temperature: 10.0 -> 1.0",
                                                     "weights: {'cls': 1.0, 'giou': 2.0, 'l1': 5.0} -> "
                                                     "{'cls': 0.5, 'giou': 2.0, 'l1': 5.0}"]
    assert loss_differences(str(tmp_path), pair, authors) == []
    # written out, the same loss: the same run
    same = ["model.loss.class_term=softmax", "model.loss.normalization=authors", "model.loss.temperature=10",
            "model.loss.weights.cls=1"]
    assert loss_differences(str(tmp_path), pair, same) == []
    out = tmp_path / "study"
    run_dir = out / "kddetr_seed0"
    run_dir.mkdir(parents=True)
    (tmp_path / "config.yaml").rename(run_dir / "config.yaml")
    (run_dir / "model_final.pth").write_bytes(b"")
    (run_dir / "metrics.json").write_text('{"iteration": 1, "total_loss": 1.0}\n{"iteration": 1, "bbox/AP": 5.0}\n')
    teacher = tmp_path / "teacher.pth"
    teacher.write_bytes(b"")
    proc = run(["studies/benchmark_kd.py", "--no-alone", "--no-inconsistent", "--iters", "2", "--seeds", "0",
                "--teacher", str(teacher), "--output", str(out)])
    assert proc.returncode != 0 and "was trained with another distillation loss" in proc.stderr
    assert "normalization: authors -> per_image" in proc.stderr and "Traceback" not in proc.stderr


def test_a_tool_prints_a_refusal_as_one_message(tmp_path):
    """A refusal raised inside a tool's work (here building the pair with a directory as its teacher)."""
    proc = run(["studies/probe_points.py", "--config-file", "configs/synthetic/dino_r50_r18.py",
                f"model.teacher_weights={tmp_path}"])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.startswith("probe_points.py: KDDETR: model.teacher_weights") and "is a directory" in proc.stderr


def test_benchmark_kd_distils_rtdetr_from_the_dino_teacher_too():
    """--family rtdetr --from-dino: beside the RT-DETR R50 teacher's arms, the same R18 student distilled from
    the DINO R50 teacher (its own teacher weights, not --teacher's), by KD-DETR and with --detrdistill by
    DETRDistill; the flag belongs to RT-DETR."""
    sys.path.insert(0, os.path.join(ROOT, "studies"))
    import benchmark_kd

    arms = benchmark_kd.family_arms("rtdetr", detrdistill=True, from_dino=True)
    assert arms[benchmark_kd.STUDENT][0] == "configs/synthetic/rtdetr_r18.py"
    assert arms[benchmark_kd.KD][0] == "configs/synthetic/rtdetr_r50_r18.py"
    teacher = [f"model.teacher_weights={benchmark_kd.DINO_TEACHER}"]
    assert arms[benchmark_kd.FROM_DINO] == ("configs/synthetic/dino_r50_rtdetr_r18.py", teacher)
    assert arms[benchmark_kd.DD_FROM_DINO] == ("configs/synthetic/detrdistill_dino_r50_rtdetr_r18.py", teacher)
    for config, _ in arms.values():
        assert os.path.isfile(os.path.join(ROOT, config)), config
    with pytest.raises(SystemExit, match="needs --family rtdetr"):
        benchmark_kd.family_arms("dino", from_dino=True)


def test_the_checkpoint_converters_refuse_a_pair_a_missing_file_and_another_family(tmp_path):
    """tools/convert_detrex.py and tools/convert_rtdetr.py share their refusals (kddetr.checkpoint.converter_model):
    a teacher/student pair, an --input that does not exist; convert_rtdetr.py also a config that is no RT-DETR."""
    dummy = tmp_path / "x.pth"
    dummy.write_bytes(b"")
    cases = [
        (["tools/convert_detrex.py", "--config-file", "configs/synthetic/dino_r50_r18.py", "--input", str(dummy)],
         "is a teacher/student pair: give the single-model config of the architecture (e.g. configs/dino_r50.py)"),
        (["tools/convert_rtdetr.py", "--config-file", "configs/synthetic/rtdetr_r18.py", "--input",
          str(tmp_path / "none.pth")], "does not exist: give a RT-DETR checkpoint file"),
        (["tools/convert_rtdetr.py", "--config-file", "configs/synthetic/dino_r18.py", "--input", str(dummy)],
         "builds a DINO, not an RTDETR"),
    ]
    for argv, message in cases:
        proc = run([*argv, "--output", str(tmp_path / "out.pth")])
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not (tmp_path / "out.pth").exists()


def test_compare_rtdetr_needs_an_rtdetr_checkout(tmp_path):
    proc = run(["studies/compare_rtdetr.py", "--rtdetr-src", str(tmp_path)])
    assert proc.returncode == 1 and "is not RT-DETR's rtdetrv2_pytorch folder (no src/nn/backbone/presnet.py)" in \
        proc.stderr and "Traceback" not in proc.stderr
