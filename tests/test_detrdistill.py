"""DETRDistill: stage mapping, student <-> teacher matching, the losses, the feature mask, the
teacher-assisted assignment, build errors and heterogeneous pairs."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from conftest import build_tiny, build_tiny_dino, synthetic_batch
from torchvision.ops import generalized_box_iou

from kddetr.distill import (
    KDDETR,
    AssignmentDistillation,
    DETRDistill,
    FeatureDistillation,
    GeneralPoints,
    InstanceDistillation,
    KDDETRLoss,
    PredictionMatcher,
    QueryContrast,
    TeacherQueries,
    stage_map,
)
from kddetr.modeling.layers.box_ops import cxcywh_to_xyxy
from kddetr.modeling.seam import DecoderOutput, EncoderState


def all_components(**kwargs):
    return DETRDistill(instance=InstanceDistillation(), feature=FeatureDistillation(), query_contrast=QueryContrast(),
                       assignment=AssignmentDistillation(), **kwargs)


def test_stage_map_pairs_layers_and_spreads_shallow_students():
    assert stage_map(6, 6) == [0, 1, 2, 3, 4, 5]
    assert stage_map(2, 6) == [2, 5]
    assert stage_map(4, 6) == [1, 2, 4, 5]
    assert stage_map(6, 3) == [0, 0, 1, 1, 2, 2]
    assert stage_map(1, 6) == [5]


def random_predictions(n, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g) * 2
    boxes = torch.cat([torch.rand(n, 2, generator=g) * 0.6 + 0.2, torch.rand(n, 2, generator=g) * 0.3 + 0.05], -1)
    return logits, boxes


def test_match_cost_is_soft_bce_minus_entropy_plus_l1_and_giou():
    s_logits, s_boxes = random_predictions(4, seed=1)
    t_logits, t_boxes = random_predictions(5, seed=2)
    matcher = PredictionMatcher(cost_class=1.0, cost_bbox=5.0, cost_giou=2.0)
    cost = matcher.cost_matrix(s_logits, s_boxes, t_logits, t_boxes)
    giou = generalized_box_iou(cxcywh_to_xyxy(s_boxes), cxcywh_to_xyxy(t_boxes))
    for i in range(4):
        for j in range(5):
            p = t_logits[j].sigmoid()
            bce = F.binary_cross_entropy(s_logits[i].sigmoid(), p, reduction="sum")
            entropy = F.binary_cross_entropy(p, p, reduction="sum")
            expected = (bce - entropy) + 5 * (s_boxes[i] - t_boxes[j]).abs().sum() - 2 * giou[i, j]
            torch.testing.assert_close(cost[i, j], expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("num_student,num_teacher", [(5, 5), (3, 6), (6, 3)])
def test_stage_matcher_equals_brute_force(num_student, num_teacher):
    matcher = PredictionMatcher()
    for seed in range(3):
        s_logits, s_boxes = random_predictions(num_student, seed=10 * seed)
        t_logits, t_boxes = random_predictions(num_teacher, seed=10 * seed + 1)
        # two layers x one image at once, the second layer with the roles of the boxes shuffled
        perm = torch.randperm(num_teacher, generator=torch.Generator().manual_seed(seed))
        S_l, S_b = torch.stack([s_logits, s_logits]), torch.stack([s_boxes, s_boxes])
        T_l, T_b = torch.stack([t_logits, t_logits[perm]]), torch.stack([t_boxes, t_boxes[perm]])
        matches = matcher(S_l[:, None], S_b[:, None], T_l[:, None], T_b[:, None])
        assert len(matches) == 2
        for layer, (rows, cols) in enumerate(matches):
            cost = matcher.cost_matrix(S_l[layer], S_b[layer], T_l[layer], T_b[layer])
            n = min(num_student, num_teacher)
            assert len(rows) == n and len(set(rows.tolist())) == n and len(set(cols.tolist())) == n
            if num_student <= num_teacher:
                best = min(sum(cost[i, c] for i, c in enumerate(cs))
                           for cs in itertools.permutations(range(num_teacher), n))
            else:
                best = min(sum(cost[r, j] for j, r in enumerate(rs))
                           for rs in itertools.permutations(range(num_student), n))
            torch.testing.assert_close(cost[rows, cols].sum(), torch.as_tensor(best), atol=1e-4, rtol=1e-5)


def copied_pair(components):
    torch.manual_seed(0)
    teacher = build_tiny_dino(dec_layers=3)
    student = build_tiny_dino(dec_layers=3)
    student.load_state_dict(teacher.state_dict())
    return KDDETR(teacher=teacher, student=student, detrdistill=DETRDistill(**components),
                  allow_untrained_teacher=True).train()


def test_instance_and_feature_losses_zero_for_a_copy_of_the_teacher_and_positive_otherwise():
    model = copied_pair(dict(instance=InstanceDistillation(), feature=FeatureDistillation()))
    batch = synthetic_batch(2)
    losses = model(batch)
    distill = {k: v for k, v in losses.items() if k.startswith(("loss_pid", "loss_fd"))}
    assert len(distill) == 3 * 3 + 3  # cls/l1/giou x 3 layers, one feature loss per teacher stage
    for k, v in distill.items():
        assert abs(v.item()) < 1e-4, (k, v.item())
    with torch.no_grad():
        for p in model.student.class_head.parameters():
            p.add_(0.5 * torch.randn_like(p))
        for p in model.student.neck.parameters():
            p.add_(0.1 * torch.randn_like(p))
    losses = model(batch)
    assert losses["loss_pid_cls"] > 1e-3 and losses["loss_pid_cls_0"] > 1e-3
    assert losses["loss_fd"] > 1e-5


def test_target_aware_weights_change_the_instance_loss():
    model = copied_pair(dict(instance=InstanceDistillation(target_aware=True)))
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(0.05 * torch.randn_like(p))
    batch = synthetic_batch(2)
    torch.manual_seed(1)
    weighted = model(batch)["loss_pid_l1"]
    model.detrdistill.instance.target_aware = False
    torch.manual_seed(1)
    plain = model(batch)["loss_pid_l1"]
    assert torch.isfinite(weighted) and torch.isfinite(plain) and abs(weighted.item() - plain.item()) > 1e-6


def encoder_state(features, shapes):
    B, S, D = features.shape
    shapes_t = torch.as_tensor(shapes)
    return EncoderState(memory=features, padding_mask=torch.zeros(B, S, dtype=torch.bool), spatial_shapes=shapes,
                        spatial_shapes_t=shapes_t, level_start_index=torch.zeros(len(shapes), dtype=torch.long),
                        valid_ratios=torch.ones(B, len(shapes), 2), image_sizes=[(64, 64)] * B, features=features)


def test_feature_mask_in_range_with_maximum_one_where_the_top_queries_look():
    torch.manual_seed(0)
    B, D, shapes = 2, 16, [(4, 4), (2, 2)]
    features = torch.randn(B, 20, D)
    hidden = torch.randn(2, B, 6, D)  # [stages, B, queries, D]
    hidden[:, :, 0] = features[:, 5][None] * 3.0  # query 0 looks like position 5 (level 0) ...
    hidden[:, :, 1] = features[:, 17][None]  # ... query 1 like position 17 (level 1)
    logits = torch.full((2, B, 6, 3), -8.0)
    logits[:, :, 0, 1] = 4.0  # the two confident queries are the top-k
    logits[:, :, 1, 2] = 4.0
    out = DecoderOutput(logits=logits, boxes=torch.full((2, B, 6, 4), 0.3), hidden=hidden)
    fd = FeatureDistillation(topk=2)
    scores = logits.sigmoid()  # no ground truth: the class probabilities alone
    mask = fd.masks(encoder_state(features, shapes), out, scores)
    assert mask.shape == (2, B, 20)
    assert mask.min() >= 1e-2 - 1e-7 and mask.max() <= 1 + 1e-6
    for level in mask.split([16, 4], -1):
        torch.testing.assert_close(level.max(-1)[0], torch.ones(2, B))
    assert (mask[..., 5] == 1).all() and (mask[..., 17] == 1).all()
    assert (mask < 0.5).float().mean() > 0.3  # not a constant mask
    # on a real (untrained) teacher the same holds
    model = KDDETR(teacher=build_tiny_dino(embed_dim=48, ffn_dim=96, dec_layers=3), student=build_tiny_dino(),
                   detrdistill=DETRDistill(feature=FeatureDistillation()), allow_untrained_teacher=True)
    step = model.teacher_predictions(synthetic_batch(2), {})
    det = step.outputs["det"]
    m = model.detrdistill.feature.masks(step.state, det, det.logits.sigmoid())
    sizes = [h * w for h, w in step.state.spatial_shapes]
    assert m.min() >= 1e-2 - 1e-7
    assert all(torch.allclose(x.max(-1)[0], torch.ones_like(x[..., 0])) for x in m.split(sizes, -1))


class SpyCriterion:
    """The student's criterion, recording the assignments it is given."""

    def __init__(self, criterion):
        self.criterion, self.calls = criterion, []

    def num_boxes(self, *args):
        return self.criterion.num_boxes(*args)

    def matched_losses(self, logits, boxes, targets, indices, num_boxes):
        self.calls.append([(q.clone(), g.clone()) for q, g in indices])
        return self.criterion.matched_losses(logits, boxes, targets, indices, num_boxes)


def test_assignment_is_the_teachers_and_does_not_follow_the_student(monkeypatch):
    torch.manual_seed(0)
    model = KDDETR(teacher=build_tiny_dino(embed_dim=48, ffn_dim=96, dec_layers=3),
                   student=build_tiny_dino(dec_layers=3),
                   detrdistill=DETRDistill(assignment=AssignmentDistillation()), allow_untrained_teacher=True).train()
    spies = []
    forward = AssignmentDistillation.forward

    def spied(self, student, teacher, targets, criterion, teacher_matcher, stages):
        spies.append(SpyCriterion(criterion))
        spies[-1].student_out = student
        return forward(self, student, teacher, targets, spies[-1], teacher_matcher, stages)

    monkeypatch.setattr(AssignmentDistillation, "forward", spied)
    batch = synthetic_batch(2)
    first = model(batch)
    assert {"loss_class_tqa", "loss_bbox_tqa_0", "loss_giou_tqa_1"} <= set(first)
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(0.2 * torch.randn_like(p))
    second = model(batch)
    assert abs(first["loss_bbox_tqa"].item() - second["loss_bbox_tqa"].item()) > 1e-4  # the student did change
    a, b = spies
    assert len(a.calls) == 3  # one per student layer
    for call_a, call_b in zip(a.calls, b.calls):
        for (qa, ga), (qb, gb) in zip(call_a, call_b):
            assert torch.equal(qa, qb) and torch.equal(ga, gb)
    # it is the teacher's own Hungarian assignment of its last layer to the ground truth
    step = model.teacher_predictions(batch, {})
    targets = model.student.prepare_targets(batch)
    expected = model.teacher.criterion.matcher(step.outputs["det"].logits[-1], step.outputs["det"].boxes[-1], targets)
    for (q, g), (qe, ge) in zip(a.calls[-1], expected):
        assert torch.equal(q, qe) and torch.equal(g, ge)
    # while the student's own matching of that group moves with the student
    own = [model.student.criterion.matcher(s.student_out.logits[-1].detach(), s.student_out.boxes[-1].detach(), targets)
           for s in spies]
    assert any(not torch.equal(x[0], y[0]) for x, y in zip(*own))


def test_all_components_and_kd_detr_train_a_step_with_gradients():
    model = KDDETR(teacher=build_tiny_dino(embed_dim=48, ffn_dim=96, dec_layers=3),
                   student=build_tiny_dino(dec_layers=2),
                   points=[GeneralPoints(num=12), TeacherQueries()], loss=KDDETRLoss(), detrdistill=all_components(),
                   allow_untrained_teacher=True).train()
    losses = model(synthetic_batch(2))
    for key in ("loss_kd_cls", "loss_pid_cls", "loss_pid_giou_0", "loss_fd", "loss_fd_0", "loss_qcl", "loss_qcl_0",
                "loss_class_tqa", "loss_class"):
        assert key in losses and torch.isfinite(losses[key]), key
    assert "loss_fd_2" not in losses and "loss_fd_1" in losses  # one per *teacher* stage (3)
    sum(losses.values()).backward()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any(n.startswith("detrdistill.feature.adapter") for n in trainable)
    assert any(n.startswith("detrdistill.query_contrast.student_proj") for n in trainable)
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    assert all(p.grad is None for p in model.teacher.parameters())


def test_build_errors_name_the_fix():
    teacher, student = build_tiny_dino(embed_dim=48, ffn_dim=96), build_tiny_dino()
    with pytest.raises(ValueError, match="every component is switched off"):
        DETRDistill()
    with pytest.raises(ValueError, match="'all' or 'last'"):
        FeatureDistillation(stages="first")
    with pytest.raises(ValueError, match="nothing to distil"):
        KDDETR(teacher=teacher, student=student, allow_untrained_teacher=True)
    with pytest.raises(ValueError, match="model.loss is None"):
        KDDETR(teacher=teacher, student=student, points=[TeacherQueries()], allow_untrained_teacher=True)


def test_heterogeneous_detrdistill_pair_and_feature_levels_mismatch():
    """A DINO teacher distils a single-scale DAB-DETR student (same query space, so the teacher's
    queries can be decoded by it); feature distillation needs the same neck levels."""
    teacher = build_tiny("dino", embed_dim=48, ffn_dim=96, dec_layers=3, dn_number=6)
    student = build_tiny("dab_detr", dec_layers=2)
    batch = synthetic_batch(2)
    model = KDDETR(teacher=teacher, student=student, allow_untrained_teacher=True,
                   detrdistill=DETRDistill(instance=InstanceDistillation(), query_contrast=QueryContrast(),
                                           assignment=AssignmentDistillation())).train()
    losses = model(batch)
    assert torch.isfinite(sum(losses.values())) and "loss_pid_cls_0" in losses and "loss_class_tqa" in losses
    model = KDDETR(teacher=teacher, student=student, allow_untrained_teacher=True,
                   detrdistill=DETRDistill(feature=FeatureDistillation())).train()
    with pytest.raises(ValueError, match="feature levels .* differ.*model.detrdistill.feature=null"):
        model(batch)
    # teacher-assisted assignment needs a student that can decode the teacher's queries
    with pytest.raises(ValueError, match="cannot decode the same"):
        KDDETR(teacher=teacher, student=build_tiny("conditional_detr"), allow_untrained_teacher=True,
               detrdistill=DETRDistill(assignment=AssignmentDistillation()))
    KDDETR(teacher=teacher, student=build_tiny("conditional_detr"), allow_untrained_teacher=True,
           detrdistill=DETRDistill(instance=InstanceDistillation()))  # predictions only: any pair


def test_a_component_given_as_a_string_says_how_to_switch_it_off():
    with pytest.raises(TypeError, match="model.detrdistill.feature=null"):
        DETRDistill(instance=InstanceDistillation(), feature="None")


def _twice(x, dim=1):
    return torch.cat([x, x], dim)


def test_feature_loss_is_a_mean_over_image_pixels_whatever_the_batch_layout():
    """The same images twice (a process holding more of them) give the same loss, and what a padded
    position holds does not count (the mask is 0 there, and the mean is over image pixels)."""
    torch.manual_seed(0)
    B, D, shapes = 2, 16, [(4, 4), (2, 2)]
    fd = FeatureDistillation(topk=3)
    fd.bind(D, D)
    t_feat, s_feat = torch.randn(B, 20, D), torch.randn(B, 20, D)
    out = DecoderOutput(logits=torch.randn(2, B, 6, 3), boxes=torch.full((2, B, 6, 4), 0.3),
                        hidden=torch.randn(2, B, 6, D))
    scores = out.logits.sigmoid()

    def loss(t, s, o, sc, padding=None):
        t_state, s_state = encoder_state(t, shapes), encoder_state(s, shapes)
        if padding is not None:
            t_state.padding_mask = s_state.padding_mask = padding
        return fd(s_state, t_state, o, sc)

    once = loss(t_feat, s_feat, out, scores)
    doubled = DecoderOutput(*(_twice(x) for x in (out.logits, out.boxes, out.hidden)))
    twice = loss(_twice(t_feat, 0), _twice(s_feat, 0), doubled, _twice(scores))
    for k in once:
        torch.testing.assert_close(twice[k], once[k])
    padding = torch.zeros(B, 20, dtype=torch.bool)
    padding[1, [3, 7, 11, 15, 19]] = True  # image 1 is narrower: its last column of each level is padding
    garbage = [t_feat.clone(), s_feat.clone()]
    for g in garbage:
        g[padding] = 100 * torch.randn(int(padding.sum()), D)
    padded, with_garbage = loss(t_feat, s_feat, out, scores, padding), loss(*garbage, out, scores, padding)
    for k in padded:
        torch.testing.assert_close(with_garbage[k], padded[k])
        assert padded[k] != once[k]
    # by hand: per level, the sum of mask^2 x squared difference over the image pixels / (image pixels x C)
    state = encoder_state(t_feat, shapes)
    state.padding_mask = padding
    mask = fd.masks(state, out, scores)  # [stages, B, S]
    diff = (t_feat - fd.adapter(s_feat)).pow(2).sum(-1).detach()
    for stage, key in ((0, "loss_fd_0"), (1, "loss_fd")):
        expected = sum(((mask[stage] ** 2 * diff)[:, a:b][~padding[:, a:b]]).sum() / ((~padding[:, a:b]).sum() * D)
                       for a, b in ((0, 16), (16, 20)))
        torch.testing.assert_close(padded[key].detach(), expected)


@pytest.mark.parametrize("negatives", ["image", "batch"])
def test_query_contrast_negatives_come_from_the_same_image(negatives):
    """The same images twice: with each image's own queries as negatives the loss does not change; with the
    batch's (the option), the contrast set doubles and the loss grows."""
    torch.manual_seed(0)
    qcl = QueryContrast(negatives=negatives)
    qcl.bind(16, 16)
    B, N = 2, 5
    student, teacher = (DecoderOutput(logits=torch.zeros(1, B, N, 3), boxes=torch.zeros(1, B, N, 4),
                                      hidden=torch.randn(1, B, N, 16)) for _ in range(2))
    img, idx = torch.arange(B).repeat_interleave(3), torch.tensor([0, 2, 4] * B)
    once = qcl(student, teacher, [(img, idx, idx)], [0])["loss_qcl"]
    doubled = [DecoderOutput(*(_twice(x) for x in (o.logits, o.boxes, o.hidden))) for o in (student, teacher)]
    img2, idx2 = torch.arange(2 * B).repeat_interleave(3), torch.tensor([0, 2, 4] * 2 * B)
    twice = qcl(*doubled, [(img2, idx2, idx2)], [0])["loss_qcl"]
    if negatives == "image":
        torch.testing.assert_close(twice, once)
    else:
        assert twice > once + 0.1
    with pytest.raises(ValueError, match="negatives"):
        QueryContrast(negatives="all")
