"""The one-class variant of the synthetic data, and the refusal of a class term that is zero on it."""
import os
import subprocess
import sys

from conftest import ROOT
from detectron2.data import DatasetCatalog, MetadataCatalog

from kddetr.config import load_config


def test_the_one_class_variant_has_the_same_images_and_boxes_in_one_class():
    import kddetr.data  # noqa: F401  (registers the synthetic datasets)

    for split in ("train", "val"):
        six, one = DatasetCatalog.get(f"synthetic_{split}"), DatasetCatalog.get(f"synthetic_{split}_one_class")
        assert MetadataCatalog.get(f"synthetic_{split}_one_class").thing_classes == ["shape"]
        assert [d["file_name"] for d in one] == [d["file_name"] for d in six]
        for a, b in zip(six[:20], one[:20]):
            assert [x["bbox"] for x in a["annotations"]] == [x["bbox"] for x in b["annotations"]]
            assert {x["category_id"] for x in b["annotations"]} <= {0}
        assert len({x["category_id"] for d in six for x in d["annotations"]}) == 6


def test_the_one_class_configs_train_one_class_and_distil_with_the_sigmoid_term():
    for name in ("dino_r50", "dino_r18"):
        cfg = load_config(os.path.join(ROOT, f"configs/synthetic/one_class/{name}.py"))
        assert cfg.model.num_classes == 1 and cfg.dataloader.train.dataset.names == "synthetic_train_one_class"
    pair = load_config(os.path.join(ROOT, "configs/synthetic/one_class/dino_r50_r18.py"))
    assert pair.model.student.num_classes == pair.model.teacher.num_classes == 1
    assert pair.model.loss.class_term == "sigmoid"


def test_a_softmax_class_term_on_one_class_is_refused_at_start_up():
    """One message naming the fix, before anything is built or read (the teacher file does not exist)."""
    config = "configs/synthetic/one_class/dino_r50_r18.py"
    proc = subprocess.run([sys.executable, "train_net.py", "--config-file", config, "model.loss.class_term=softmax",
                           "model.teacher_weights=/nonexistent/teacher.pth"],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "with 1 class it is 0 whatever the logits" in proc.stderr and "model.loss.class_term=sigmoid" in proc.stderr


def test_the_one_class_study_arms_are_the_one_class_configs():
    """studies/benchmark_kd.py --family one_class/dino --boxes-only: the student alone, the pair as shipped
    (sigmoid class term) and the same pair with its class term off (what a softmax term leaves on one
    class), all on the one-class configs; the boxes-only arm builds (its class weight 0 is not refused)."""
    from detectron2.config import instantiate

    sys.path.insert(0, os.path.join(ROOT, "studies"))
    import benchmark_kd

    arms = benchmark_kd.family_arms(benchmark_kd.ONE_CLASS, boxes_only=True)
    assert set(arms) == {benchmark_kd.STUDENT, benchmark_kd.KD, benchmark_kd.BOXES_ONLY}
    for config, _ in arms.values():
        assert config.startswith("configs/synthetic/one_class/") and os.path.isfile(os.path.join(ROOT, config))
    config, overrides = arms[benchmark_kd.BOXES_ONLY]
    cfg = load_config(os.path.join(ROOT, config), overrides)
    assert cfg.model.loss.weights.cls == 0.0 and cfg.model.loss.class_term == "sigmoid"
    loss = instantiate(cfg.model.loss)
    loss.check_num_classes(1)
