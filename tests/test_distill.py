"""The KD-DETR META_ARCH: frozen teacher, shared points, loss, fused pass, build errors."""
import os

import pytest
import torch
from conftest import ROOT, build_tiny_dino, build_tiny_kd, synthetic_batch

from kddetr.distill import (
    KDDETR,
    GeneralPoints,
    Inconsistent,
    KDDETRLoss,
    SimilarForeground,
    SimilarGeneral,
    TeacherQueries,
)
from kddetr.modeling.seam import BOX_LOGITS, Queries, QueryGroup, QuerySpace, missing_seam_members


def test_teacher_frozen_bit_identical_and_in_eval_mode():
    model = build_tiny_kd().train()
    assert not model.teacher.training and model.student.training
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    assert all(not p.requires_grad for p in model.teacher.parameters())
    batch = synthetic_batch(2)
    for step in range(3):
        losses = model(batch)
        assert {"loss_kd_cls", "loss_kd_l1", "loss_kd_giou", "loss_kd_cls_0", "loss_class"} <= set(losses)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
        model.train()
        assert not model.teacher.training
    assert all(p.grad is None for p in model.teacher.parameters())
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, before[k]), k
    # the teacher is not in the checkpoints, and loading one does not ask for it
    state = model.state_dict()
    assert state and not any(k.startswith("teacher.") for k in state)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys


def test_eval_forward_runs_the_student_only(monkeypatch):
    model = build_tiny_kd().eval()
    monkeypatch.setattr(model.teacher, "encode", lambda *a: pytest.fail("teacher ran at inference"))
    with torch.no_grad():
        out = model(synthetic_batch(1, with_targets=False))
    assert len(out[0]["instances"]) > 0


def test_loss_zero_for_a_copy_of_the_teacher_and_positive_otherwise():
    torch.manual_seed(0)
    teacher = build_tiny_dino(dec_layers=3)
    student = build_tiny_dino(dec_layers=3)
    student.load_state_dict(teacher.state_dict())
    model = KDDETR(teacher=teacher, student=student, points=[GeneralPoints(num=12), TeacherQueries()],
                   loss=KDDETRLoss(), allow_untrained_teacher=True).train()
    batch = synthetic_batch(2)
    kd = {k: v for k, v in model(batch).items() if k.startswith("loss_kd")}
    assert len(kd) == 9  # cls/l1/giou x 3 layers
    # the student's last layer against the teacher's last layer: identical models, zero loss;
    # earlier student layers are also pulled towards the teacher's *last* layer, so not zero.
    for k in ("loss_kd_cls", "loss_kd_l1", "loss_kd_giou"):
        assert abs(kd[k].item()) < 1e-4, (k, kd[k].item())
    assert kd["loss_kd_cls_0"] > 1e-4
    with torch.no_grad():
        for p in student.class_head.parameters():
            p.add_(0.5 * torch.randn_like(p))
        for head in student.box_head:  # one head per decoder layer
            head.layers[-1].bias.add_(0.3)
    kd = {k: v for k, v in model(batch).items() if k.startswith("loss_kd")}
    assert all(v.item() > 1e-3 for v in kd.values()), kd


def test_foreground_weight_is_the_teacher_max_probability():
    loss = KDDETRLoss()
    t_logits = torch.randn(2, 5, 6)
    w = loss.point_weights(t_logits, None)
    torch.testing.assert_close(w, t_logits.sigmoid().max(-1)[0])
    valid = torch.tensor([[True, False, True, True, False]] * 2)
    assert (loss.point_weights(t_logits, valid)[~valid] == 0).all()
    assert (KDDETRLoss(foreground_weight=False).point_weights(t_logits, None) == 1).all()
    # the weight scales each point's contribution: a point with weight 0 adds nothing
    s = torch.randn(1, 2, 5, 6)
    boxes = torch.rand(1, 2, 5, 4) * 0.5 + 0.25
    from kddetr.distill import PointPairs

    base = loss([PointPairs(s, boxes, t_logits, boxes[0], valid)])
    s2 = s.clone()
    s2[0][~valid] += 3.0
    torch.testing.assert_close(loss([PointPairs(s2, boxes, t_logits, boxes[0], valid)]), base)


def test_teacher_and_student_decode_identical_general_points(monkeypatch):
    model = build_tiny_kd().train()
    seen = {}

    def spy(name, decode):
        def wrapped(state, groups):
            seen[name] = {g.name: g.queries.boxes.clone() for g in groups}
            return decode(state, groups)
        return wrapped

    monkeypatch.setattr(model.teacher, "decode", spy("teacher", model.teacher.decode))
    monkeypatch.setattr(model.student, "decode", spy("student", model.student.decode))
    points = model.sample_points(torch.Generator().manual_seed(3))
    model(synthetic_batch(2), distill_points=points)
    assert set(seen["teacher"]) == {"kd_general", "kd_specific"}
    assert {"det", "dn", "kd_general", "kd_specific"} <= set(seen["student"])
    for g in ("kd_general", "kd_specific"):
        assert torch.equal(seen["teacher"][g], seen["student"][g])
    # shared across the batch, and exactly the trainer's draw
    torch.testing.assert_close(seen["teacher"]["kd_general"][1], points["general"])
    torch.testing.assert_close(seen["teacher"]["kd_general"][0], points["general"])


def test_general_points_resample_or_fixed():
    g = torch.Generator().manual_seed(0)
    normal = GeneralPoints(num=50)
    a, b = normal.sample(g), normal.sample(g)
    assert a.shape == (50, 4) and not torch.equal(a, b)
    uniform = GeneralPoints(num=5000, init="uniform")
    boxes = uniform.sample(g).sigmoid()
    assert 0.45 < boxes.mean() < 0.55 and boxes.min() > 0 and boxes.max() < 1 and boxes.std() > 0.25
    fixed = GeneralPoints(num=7, resample=False)
    assert fixed.sample(g) is None
    q = fixed.teacher_queries(Queries(torch.zeros(3, 2, 4)), None)
    assert q.boxes.shape == (3, 7, 4) and torch.equal(q.boxes[0], fixed.fixed)


def test_fused_student_pass_equals_separate_passes_with_denoising():
    model = build_tiny_kd().train()
    student = model.student
    batch = synthetic_batch(2)
    images, mask = student.preprocess_image(batch)
    targets = student.prepare_targets(batch)
    with torch.no_grad():
        state = student.encode(images, mask)
        queries = student.default_queries(state)
        points = QueryGroup("kd_general", Queries(torch.randn(2, 9, 4)))
        torch.manual_seed(5)
        losses_fused, fused = student.forward_train(state, queries, targets, extra_groups=[points])
        torch.manual_seed(5)  # same denoising noise
        losses_alone, alone = student.forward_train(state, queries, targets)
        separate_points = student.decode(state, [points])[0]
    assert "dn" in fused
    for g in ("det", "dn"):
        torch.testing.assert_close(fused[g].logits, alone[g].logits, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(fused[g].boxes, alone[g].boxes, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fused["kd_general"].logits, separate_points.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fused["kd_general"].boxes, separate_points.boxes, atol=1e-5, rtol=1e-4)
    for k in losses_alone:
        torch.testing.assert_close(losses_fused[k], losses_alone[k], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("points", [[Inconsistent()], [SimilarForeground()], [SimilarGeneral()],
                                    [TeacherQueries()], [GeneralPoints(num=8, init="uniform")]])
def test_ablation_point_sets_train(points):
    model = build_tiny_kd(points=points).train()
    losses = model(synthetic_batch(2))
    kd = {k: v for k, v in losses.items() if k.startswith("loss_kd")}
    # (at initialisation both box heads return their reference boxes, so box terms may be ~0)
    assert len(kd) == 6 and all(torch.isfinite(v) and v >= 0 for v in kd.values())
    assert kd["loss_kd_cls"] > 0
    sum(losses.values()).backward()
    assert model.student.class_head[-1].weight.grad.abs().sum() > 0


def test_last_layer_only():
    model = build_tiny_kd()
    model.kd_detr.loss = KDDETRLoss(layers="last")
    kd = [k for k in model.train()(synthetic_batch(2)) if k.startswith("loss_kd")]
    assert sorted(kd) == ["loss_kd_cls", "loss_kd_giou", "loss_kd_l1"]


# ---- build-time errors -------------------------------------------------------------------------
def test_untrained_teacher_refused_without_the_flag():
    with pytest.raises(ValueError, match="allow_untrained_teacher"):
        KDDETR(teacher=build_tiny_dino(), student=build_tiny_dino(), points=[TeacherQueries()], loss=KDDETRLoss())


def test_missing_teacher_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth' does not exist"):
        build_tiny_kd(teacher_weights=str(tmp_path / "nope.pth"))


def test_a_directory_as_teacher_is_named_as_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="is a directory, not a checkpoint file.*e.g. its model_final.pth"):
        build_tiny_kd(teacher_weights=str(tmp_path))
    (tmp_path / "model_final.pth").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=rf"model.teacher_weights={tmp_path}/model_final.pth"):
        build_tiny_kd(teacher_weights=str(tmp_path))
    from kddetr.config import check_inputs, load_config

    cfg = load_config(os.path.join(ROOT, "configs/synthetic/dino_r50_r18.py"), [f"model.teacher_weights={tmp_path}"])
    with pytest.raises(FileNotFoundError, match="is a directory") as e:
        check_inputs(cfg)
    assert "does not exist" not in str(e.value)


def test_a_teacher_of_another_class_count_is_named_as_such(tmp_path):
    """A 6-class teacher checkpoint for a 3-class dataset (user_dataset.* sets every num_classes to 3):
    the class counts are named, not a list of tensor shapes."""
    path = tmp_path / "teacher.pth"
    torch.save({"model": build_tiny_kd().teacher.state_dict()}, path)
    teacher = build_tiny_dino(embed_dim=48, ffn_dim=96, dec_layers=3, num_classes=3)
    with pytest.raises(ValueError, match="predicts 6 classes, but the config's teacher and student .* have 3"):
        KDDETR(teacher=teacher, student=build_tiny_dino(num_classes=3), points=[TeacherQueries()], loss=KDDETRLoss(),
               teacher_weights=str(path))


def test_teacher_with_other_classes():
    with pytest.raises(ValueError, match="teacher predicts 6 classes but the student 4"):
        build_tiny_kd(student_overrides=dict(num_classes=4))


def test_teacher_parameters_not_loaded(tmp_path):
    # a checkpoint of another model (the student-sized DINO) for the wider teacher
    path = tmp_path / "other.pth"
    torch.save({"model": build_tiny_dino().state_dict()}, path)
    with pytest.raises(ValueError, match=r"other shapes .*model.teacher_weights"):
        build_tiny_kd(teacher_weights=str(path))
    state = build_tiny_kd().teacher.state_dict()
    del state["class_head.0.weight"], state["level_embed"]
    torch.save({"model": state}, path)
    with pytest.raises(ValueError, match=r"\(model.teacher_weights\) does not match the DINO .* lacks 2 of the"):
        build_tiny_kd(teacher_weights=str(path))


def test_teacher_loaded_from_checkpoint(tmp_path):
    teacher_state = build_tiny_kd().teacher.state_dict()
    teacher_state = {k: v + 1.0 if v.is_floating_point() else v for k, v in teacher_state.items()}
    path = tmp_path / "teacher.pth"
    torch.save({"model": teacher_state, "iteration": 5}, path)
    model = build_tiny_kd(teacher_weights=str(path))
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_state[k]), k


def test_teacher_and_student_must_decode_the_same_points():
    student = build_tiny_dino()
    student.query_space = QuerySpace.embedding("ConditionalDETR", 32)  # e.g. a Conditional DETR student
    with pytest.raises(ValueError, match="space 'box_logits' but the student .* 'embedding:ConditionalDETR:32'"):
        KDDETR(teacher=build_tiny_dino(), student=student, points=[TeacherQueries()], loss=KDDETRLoss(),
               allow_untrained_teacher=True)


def test_query_space_is_a_value():
    space = QuerySpace.embedding("DeformableDETR", 256)
    assert space == QuerySpace("embedding", "DeformableDETR", 256) and space != BOX_LOGITS
    assert str(space) == "embedding:DeformableDETR:256" and str(BOX_LOGITS) == "box_logits"
    assert BOX_LOGITS.is_boxes and not space.is_boxes and space.dim == 256
    with pytest.raises(Exception):  # frozen: a detector cannot change another's space by accident
        space.dim = 4
    with pytest.raises(ValueError, match="kind must be"):
        QuerySpace("points_2d")


def test_seam_check_covers_the_whole_protocol():
    """Every member KDDETR uses is checked when the pair is built, the criterion's included."""
    model = build_tiny_dino()
    assert missing_seam_members(model) == []
    del model.criterion.matcher
    model.criterion.matcher = lambda logits, boxes, targets: []  # a matcher of one set at a time only
    assert missing_seam_members(model) == ["criterion.matcher.match_many"]
    del model.criterion.matcher
    assert missing_seam_members(model) == ["criterion.matcher"]
    with pytest.raises(TypeError, match=r"student \(DINO\) does not implement .* \(missing \['criterion.matcher'\]"):
        KDDETR(teacher=build_tiny_dino(), student=model, points=[TeacherQueries()], loss=KDDETRLoss(),
               allow_untrained_teacher=True)
    assert {"encode", "default_queries", "decode", "forward_train", "prepare_targets", "preprocess_image",
            "num_classes", "query_space", "criterion"} <= set(missing_seam_members(object()))


def test_ema_averages_the_student_only():
    from kddetr.engine import ModelEMA

    model = build_tiny_kd()
    ema = ModelEMA(model, decay=0.5)
    assert ema.state and all(k.startswith("student.") for k in ema.state)
    with ema.swapped_into(model) as m:  # loads strictly although the teacher is not in the average
        assert m is model


def test_distillation_checkpoint_given_as_teacher(tmp_path):
    path = tmp_path / "kd.pth"
    torch.save({"model": build_tiny_kd().state_dict()}, path)  # student.* keys only
    with pytest.raises(ValueError, match="is a distillation checkpoint"):
        build_tiny_kd(teacher_weights=str(path))


def test_pair_and_option_checks():
    with pytest.raises(TypeError, match="does not implement the distillation seam"):
        KDDETR(teacher=torch.nn.Linear(2, 2), student=build_tiny_dino(), points=[], loss=KDDETRLoss(),
               allow_untrained_teacher=True)
    with pytest.raises(ValueError, match="distinct names"):
        build_tiny_kd(points=[GeneralPoints(num=4), GeneralPoints(num=8)])
    with pytest.raises(ValueError, match="'normal' or 'uniform'"):
        GeneralPoints(init="gaussian")
    with pytest.raises(ValueError, match="'all' or 'last'"):
        KDDETRLoss(layers="first")


def test_export_refuses_what_it_cannot_serve(tmp_path):
    from detectron2.config import get_cfg

    from kddetr.checkpoint import student_state_dict
    from kddetr.config import add_kddetr_config
    from kddetr.export import KDDETRStudent

    path = tmp_path / "single.pth"
    torch.save({"model": build_tiny_dino().state_dict()}, path)
    with pytest.raises(ValueError, match="not a distillation checkpoint"):
        student_state_dict(str(path))
    cfg = get_cfg()
    add_kddetr_config(cfg)
    cfg.MODEL.KDDETR.MODEL_CONFIG = str(tmp_path / "absent.yaml")
    with pytest.raises(FileNotFoundError, match="student_model.yaml"):
        KDDETRStudent(cfg)
