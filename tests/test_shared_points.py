"""Shared distillation points are decoded at the same reference locations by teacher and student,
in every family: the box-query ones (the boxes are the references) and the embedding-query ones
(Conditional DETR, plain Deformable DETR), whose learned layers would otherwise map the same
embedding to different points."""
import pytest
import torch
from conftest import FAMILIES, build_tiny, synthetic_batch

from kddetr.distill import KDDETR, GeneralPoints, KDDETRLoss, TeacherQueries
from kddetr.modeling.seam import QueryGroup


def decoder_references(model):
    """Capture the reference logits ``[B, N, 2 | 4]`` every call of ``model.decoder`` receives."""
    seen = []
    model.decoder.register_forward_pre_hook(lambda module, args: seen.append(args[1].detach().clone()))
    return seen


def pair(family):
    teacher, student = build_tiny(family, dec_layers=3), build_tiny(family)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # a teacher that has learned something else than the student's initialisation
        for p in teacher.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.2)
    for m in [*teacher.modules(), *student.modules()]:
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0  # so that the student's detection queries can be recomputed below
    return KDDETR(teacher=teacher, student=student, points=[GeneralPoints(num=7), TeacherQueries()],
                  loss=KDDETRLoss(), allow_untrained_teacher=True).train()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_shared_points_decode_at_the_teachers_references(family):
    model = pair(family)
    t_refs, s_refs = decoder_references(model.teacher), decoder_references(model.student)
    batch = synthetic_batch(2)
    teacher = model.teacher_predictions(batch, model.sample_points(torch.Generator().manual_seed(0)))
    model.student_step(batch, teacher)
    (t_ref,), (s_ref,) = t_refs, s_refs  # one fused decoder pass each
    groups = list(teacher.queries)  # kd_general, kd_teacher
    sizes = [teacher.queries[g].num for g in groups]
    t_parts = dict(zip(groups, t_ref.split(sizes, 1)))
    s_shared = s_ref[:, s_ref.shape[1] - sum(sizes):]  # the shared groups come last in the student's pass
    s_parts = dict(zip(groups, s_shared.split(sizes, 1)))
    for g in groups:
        torch.testing.assert_close(s_parts[g], t_parts[g], rtol=0, atol=0)
    # and the student's own detection queries keep their own references (the first group of its pass)
    own = model.student.embed_queries(model.student.default_queries(model.student.encode(
        *model.student.preprocess_image(batch))))[2]
    torch.testing.assert_close(s_ref[:, :own.shape[1]], own.detach())


@pytest.mark.parametrize("family", ["conditional_detr", "deformable_detr"])
def test_without_the_teachers_reference_the_embedding_families_would_differ(family):
    """What the reference fixes: the student's own layer maps the teacher's embeddings elsewhere."""
    model = pair(family)
    batch = synthetic_batch(2)
    teacher = model.teacher_predictions(batch, model.sample_points(torch.Generator().manual_seed(0)))
    q = teacher.queries["kd_general"]
    own = model.student.embed_queries(q.position_only())[2]
    assert q.reference is not None and not torch.allclose(own, q.reference, atol=1e-3)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_teachers_specific_points_are_decoded_as_its_own_detection_queries(family):
    """Specific points are the teacher's well-trained queries: it decodes them with their own
    content, so their predictions are its detections (DAB-Deformable DETR's content is learned per
    anchor and carries much of what it predicts there)."""
    model = pair(family)
    batch = synthetic_batch(2)
    with torch.no_grad():
        teacher = model.teacher_predictions(batch, model.sample_points(torch.Generator().manual_seed(0)))
        own = model.teacher.decode(teacher.state, [QueryGroup("det", teacher.default)])[0]
    specific = teacher.outputs["kd_specific"]
    torch.testing.assert_close(specific.boxes, own.boxes)
    torch.testing.assert_close(specific.logits, own.logits)


@pytest.mark.parametrize("family", ["dab_deformable_detr"])
def test_shared_points_leave_the_students_per_anchor_content_alone(family):
    """A student whose content queries are learned together with its own anchors decodes the
    shared points with zero content: the distillation loss does not pull content vector i towards
    the teacher's anchor i (a different place) while detection trains it for the student's anchor i."""
    model = pair(family)
    losses = model(synthetic_batch(2), model.sample_points(torch.Generator().manual_seed(0)))
    kd = sum(v for k, v in losses.items() if k.startswith("loss_kd"))
    det = sum(v for k, v in losses.items() if not k.startswith("loss_kd"))
    content, head = model.student.tgt_embed.weight, model.student.class_head[-1].weight
    g_kd, g_head = torch.autograd.grad(kd, [content, head], allow_unused=True, retain_graph=True)
    (g_det,) = torch.autograd.grad(det, content)
    assert g_kd is None or not g_kd.any()
    assert g_head.abs().sum() > 0  # the distillation loss does train the student (nothing detached)
    assert g_det.abs().sum() > 0  # and detection still trains the content
