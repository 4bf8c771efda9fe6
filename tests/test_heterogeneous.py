"""Teacher and student of different sizes, depths, query counts and families: built and trained a
step through the one seam; pairs whose query spaces differ are refused at build time."""
import pytest
import torch
from conftest import build_tiny, synthetic_batch

from kddetr.distill import KDDETR, GeneralPoints, KDDETRLoss, TeacherQueries


def kd(teacher, student, points=None):
    points = points or [GeneralPoints(num=12), TeacherQueries()]
    return KDDETR(teacher=teacher, student=student, points=points, loss=KDDETRLoss(), allow_untrained_teacher=True)


PAIRS = {
    # teacher: wider, deeper, more queries; student: another family of the same (box) query space
    "dino -> dab_detr": (dict(family="dino", embed_dim=48, ffn_dim=96, dec_layers=3, num_queries=40),
                         dict(family="dab_detr", dec_layers=2)),
    "dino -> deformable two-stage": (dict(family="dino", depth=50, dec_layers=3, num_queries=40),
                                     dict(family="deformable_detr_two_stage")),
    "dab_detr -> dab_deformable": (dict(family="dab_detr", embed_dim=48, ffn_dim=96, enc_layers=2, num_queries=40),
                                   dict(family="dab_deformable_detr", enc_layers=1, dec_layers=1)),
    "conditional deeper -> conditional": (dict(family="conditional_detr", depth=50, dec_layers=3, num_queries=40),
                                          dict(family="conditional_detr", dec_layers=2)),
    "deformable -> deformable with fewer layers": (dict(family="deformable_detr", dec_layers=3),
                                                  dict(family="deformable_detr_refine", dec_layers=1)),
}


def _build(spec):
    spec = dict(spec)
    return build_tiny(spec.pop("family"), **spec)


@pytest.mark.parametrize("pair", list(PAIRS))
def test_heterogeneous_pair_trains_a_step(pair):
    t_spec, s_spec = PAIRS[pair]
    model = kd(_build(t_spec), _build(s_spec)).train()
    losses = model(synthetic_batch(2))
    L = model.student.decoder.num_layers
    kd_keys = {k for k in losses if k.startswith("loss_kd_")}
    assert len(kd_keys) == 3 * L  # every student layer mimics the teacher's last layer
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    grads = [p.grad for p in model.student.parameters() if p.requires_grad]
    assert sum(g is not None and g.abs().sum() > 0 for g in grads) > 0.8 * len(grads)


@pytest.mark.parametrize("teacher, student, message", [
    ("dino", "deformable_detr", "model.student.two_stage=True"),
    ("conditional_detr", "deformable_detr", "embedding:ConditionalDETR"),
    ("deformable_detr", "dab_detr", "'embedding:DeformableDETR:32'"),
])
def test_pairs_of_different_query_spaces_are_refused(teacher, student, message):
    with pytest.raises(ValueError, match="cannot decode the same distillation points") as err:
        kd(build_tiny(teacher), build_tiny(student))
    assert message in str(err.value)


def test_embedding_queries_need_equal_widths():
    with pytest.raises(ValueError, match="embedding:ConditionalDETR:48.*embedding:ConditionalDETR:32"):
        kd(build_tiny("conditional_detr", embed_dim=48, ffn_dim=96), build_tiny("conditional_detr"))


def test_uniform_boxes_are_refused_for_embedding_queries():
    with pytest.raises(ValueError, match="init='normal'"):
        kd(build_tiny("conditional_detr"), build_tiny("conditional_detr"),
           points=[GeneralPoints(num=8, init="uniform")])


def test_general_points_for_embedding_queries_are_shared_embeddings():
    model = kd(build_tiny("deformable_detr", depth=50), build_tiny("deformable_detr")).train()
    sampled = model.sample_points(torch.Generator().manual_seed(0))
    assert sampled["general"].shape == (12, model.student.embed_dim)
    queries = model.teacher_predictions(synthetic_batch(2), sampled).queries
    assert queries["kd_general"].boxes is None and torch.equal(queries["kd_general"].embeds[1], sampled["general"])
    # the specific points are the teacher's learned position embeddings
    t_pos = model.teacher.query_embed.weight[:, : model.teacher.embed_dim]
    assert torch.equal(queries["kd_specific"].embeds[0], t_pos)
