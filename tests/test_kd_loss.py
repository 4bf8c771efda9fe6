"""KD-DETR's losses against a direct transcription of the authors' formulas (KD-DETR's official
DAB-DETR code, ``models/DAB_DETR/kd_loss.py``: ``KDCriterion``) on fixed tensors.

The reference functions below are written from the formulas only (plain torch ops and loops);
they share no code with ``kddetr.distill.kd_detr``.
"""
import os

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, build_tiny_dino, synthetic_batch
from detectron2.config import LazyConfig, instantiate

from kddetr.distill import (
    KDDETR,
    Inconsistent,
    KDDETRLoss,
    PointPairs,
    SimilarForeground,
    SimilarGeneral,
    TeacherQueries,
)
from kddetr.distill.kd_detr import BaselineKDLoss
from kddetr.modeling.seam import DecoderOutput

T = 10.0


# ---- the authors' formulas, transcribed ---------------------------------------------------------
def ref_giou_loss(a, b):
    """1 - GIoU of cxcywh boxes ``[P, 4]``, one pair per row, from the definition."""
    out = []
    for (acx, acy, aw, ah), (bcx, bcy, bw, bh) in zip(a.tolist(), b.tolist()):
        ax0, ay0, ax1, ay1 = acx - aw / 2, acy - ah / 2, acx + aw / 2, acy + ah / 2
        bx0, by0, bx1, by1 = bcx - bw / 2, bcy - bh / 2, bcx + bw / 2, bcy + bh / 2
        inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
        union = aw * ah + bw * bh - inter
        hull = (max(ax1, bx1) - min(ax0, bx0)) * (max(ay1, by1) - min(ay0, by0))
        out.append(1.0 - (inter / union - (hull - union) / hull))
    return torch.tensor(out, dtype=torch.float64)


def ref_kl(s, t):
    """Per point ``[P]``: ``F.kl_div(log_softmax(s / T), softmax(t / T), 'none').mean(1) * T * T``,
    written out with a loop over the classes."""
    p_t, log_p_s = F.softmax(t.double() / T, 1), F.log_softmax(s.double() / T, 1)
    K = s.shape[1]
    kl = torch.zeros(s.shape[0], dtype=torch.float64)
    for k in range(K):
        kl += p_t[:, k] * (p_t[:, k].log() - log_p_s[:, k])
    return kl / K * T * T


def ref_kd_detr(s_logits, s_boxes, t_logits, t_boxes):
    """KD-DETR (``auxrf`` / ``randomrf`` terms): one student layer ``[B, N, .]`` against the
    teacher's last layer ``[B, N, .]``; points flattened over the batch, weight = teacher's max
    sigmoid; class: ``sum(kl * w)``; boxes: ``sum(l * w) / sum(w)``. Unweighted terms."""
    s, t = s_logits.flatten(0, 1), t_logits.flatten(0, 1)
    sb, tb = s_boxes.flatten(0, 1).double(), t_boxes.flatten(0, 1).double()
    w = t.double().sigmoid().max(1)[0]
    cls = sum(ref_kl(s, t) * w)
    l1 = sum((sb - tb).abs().mean(1) * w) / w.sum()
    giou = sum(ref_giou_loss(sb, tb) * w) / w.sum()
    return {"cls": cls, "l1": l1, "giou": giou}


def ref_smooth_l1(x, y, beta=1.0 / 9.0):
    d = (x.double() - y.double()).abs()
    return torch.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)


def ref_baseline(s_logits, s_boxes, t_logits, t_boxes):
    """Table 1 baselines (``loss_kd_logits``): ``loss_kl_div`` without weight (``.mean()`` over
    the points) and ``nn.SmoothL1Loss(beta=1/9)`` (mean over points and coordinates), for one
    pair of layers, points ``[P, .]`` (the matched ones, stacked, for the Similar baselines)."""
    return {"cls": ref_kl(s_logits, t_logits).mean(), "l1": ref_smooth_l1(s_boxes, t_boxes).mean()}


def random_predictions(layers, B=3, N=5, K=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(layers, B, N, K, generator=g) * 3
    boxes = torch.cat([torch.rand(layers, B, N, 2, generator=g) * 0.6 + 0.2,
                       torch.rand(layers, B, N, 2, generator=g) * 0.3 + 0.05], -1)
    return logits, boxes


def close(actual, expected):
    torch.testing.assert_close(actual.double(), torch.as_tensor(expected, dtype=torch.float64), rtol=1e-5, atol=1e-6)


# ---- KD-DETR ------------------------------------------------------------------------------------
SOFTMAX = dict(class_term="softmax")  # the authors' class term, at its defaults (T 10, weight 2 per image)
AUTHORS = dict(normalization="authors", weights={"cls": 1.0, "l1": 5.0, "giou": 2.0})  # their code at any layout


def test_kd_detr_authors_option_equals_the_authors_formula():
    s_logits, s_boxes = random_predictions(2, seed=0)
    t_logits, t_boxes = random_predictions(3, seed=1)  # a deeper teacher: only its last layer counts
    losses = KDDETRLoss(**SOFTMAX, **AUTHORS)([PointPairs(s_logits, s_boxes, t_logits, t_boxes)])
    assert set(losses) == {f"loss_kd_{n}{tag}" for n in ("cls", "l1", "giou") for tag in ("", "_0")}
    for layer, tag in ((0, "_0"), (1, "")):
        ref = ref_kd_detr(s_logits[layer], s_boxes[layer], t_logits[-1], t_boxes[-1])
        close(losses[f"loss_kd_cls{tag}"], 1.0 * ref["cls"])
        close(losses[f"loss_kd_l1{tag}"], 5.0 * ref["l1"])
        close(losses[f"loss_kd_giou{tag}"], 2.0 * ref["giou"])


def test_kd_detr_softmax_term_is_the_authors_loss_at_their_layout():
    """``class_term="softmax"`` at its defaults (per image, T 10, weight 2) on a process of 2 images, the
    authors' layout (16 images on 8 GPUs), is their loss to the digit; on 3 images it is not (their sum grows
    with them). ``normalization="authors"`` alone halves the default weight: their code's 1."""
    for B, equal in ((2, True), (3, False)):
        s_logits, s_boxes = random_predictions(2, B=B, seed=2)
        t_logits, t_boxes = random_predictions(2, B=B, seed=3)
        pairs = [PointPairs(s_logits, s_boxes, t_logits, t_boxes)]
        default, authors = KDDETRLoss(**SOFTMAX)(pairs), KDDETRLoss(**SOFTMAX, **AUTHORS)(pairs)
        assert set(default) == set(authors)
        for k in default:
            if equal or not k.startswith("loss_kd_cls"):
                close(default[k], authors[k])
            else:
                close(default[k], authors[k] * 2 / B)
    assert KDDETRLoss(**SOFTMAX, normalization="authors").weights == AUTHORS["weights"]
    assert KDDETRLoss(**SOFTMAX).temperature == T
    with pytest.raises(ValueError, match="normalization"):
        KDDETRLoss(normalization="mean")
    with pytest.raises(ValueError, match="class_term"):
        KDDETRLoss(class_term="softmax2")


@pytest.mark.parametrize("class_term", ["softmax", "sigmoid"])
def test_kd_detr_default_gradient_does_not_depend_on_the_batch_layout(class_term):
    """Data parallelism averages the processes' gradients. 8 images as 1 process x 8, 2 x 4 or 4 x 2:
    the per-image loss gives every layout the same gradient; the authors' sum one B times larger."""
    s_logits, s_boxes = random_predictions(2, B=8, seed=14)
    t_logits, t_boxes = random_predictions(2, B=8, seed=15)

    def ddp_gradient(loss, processes):
        s = s_logits.clone().requires_grad_(True)
        per_process = [loss([PointPairs(*(x[:, i::processes] for x in (s, s_boxes, t_logits, t_boxes)))])
                       for i in range(processes)]
        (sum(v["loss_kd_cls"] + v["loss_kd_cls_0"] for v in per_process) / processes).backward()
        return s.grad

    default = KDDETRLoss(class_term=class_term)
    authors = KDDETRLoss(class_term=class_term, **AUTHORS)
    one = ddp_gradient(default, 1)
    for processes in (2, 4, 8):
        torch.testing.assert_close(ddp_gradient(default, processes), one)
        B = 8 // processes
        torch.testing.assert_close(ddp_gradient(authors, processes), ddp_gradient(authors, 1) * B / 8)


def test_kd_detr_class_term_sums_over_images():
    """The same images twice: the authors' class term doubles (a sum over all points of all
    images), the default per-image one and the box terms (weighted means) do not change."""
    s_logits, s_boxes = random_predictions(1, B=2, seed=4)
    t_logits, t_boxes = random_predictions(1, B=2, seed=5)
    once = PointPairs(s_logits, s_boxes, t_logits, t_boxes)
    twice = PointPairs(*(torch.cat([x, x], 1) for x in (s_logits, s_boxes, t_logits, t_boxes)))
    authors, per_image = KDDETRLoss(**SOFTMAX, **AUTHORS), KDDETRLoss(**SOFTMAX)
    a1, a2 = authors([once]), authors([twice])
    close(a2["loss_kd_cls"], 2 * a1["loss_kd_cls"])
    close(a2["loss_kd_l1"], a1["loss_kd_l1"])
    close(a2["loss_kd_giou"], a1["loss_kd_giou"])
    close(per_image([twice])["loss_kd_cls"], per_image([once])["loss_kd_cls"])
    close(a1["loss_kd_cls"], per_image([once])["loss_kd_cls"])  # B = 2 at weight 2


def ref_binary_kl(s, t):
    """Per point ``[P]``: ``T^2 sum_k KL(Bern(sigmoid(t_k / T)) || Bern(sigmoid(s_k / T)))``, from the
    definition with a loop over the classes."""
    q_t, q_s = (t.double() / T).sigmoid(), (s.double() / T).sigmoid()
    kl = torch.zeros(s.shape[0], dtype=torch.float64)
    for k in range(s.shape[1]):
        kl += q_t[:, k] * (q_t[:, k] / q_s[:, k]).log() + (1 - q_t[:, k]) * ((1 - q_t[:, k]) / (1 - q_s[:, k])).log()
    return kl * T * T


@pytest.mark.parametrize("K", [7, 1])
def test_kd_detr_sigmoid_class_term_is_a_binary_kl_per_class(K):
    """``class_term="sigmoid"``: the teacher-weighted binary KL per class, per image; with one class it
    still moves the student (the softmax term is 0 there whatever the logits)."""
    s_logits, s_boxes = random_predictions(2, K=K, seed=16)
    t_logits, t_boxes = random_predictions(2, K=K, seed=17)
    B = s_logits.shape[1]
    pairs = [PointPairs(s_logits, s_boxes, t_logits, t_boxes)]
    losses = KDDETRLoss(class_term="sigmoid", temperature=T, weights={"cls": 2.0})(pairs)
    s, t = s_logits[-1].flatten(0, 1), t_logits[-1].flatten(0, 1)
    w = t.double().sigmoid().max(1)[0]
    close(losses["loss_kd_cls"], 2.0 * (ref_binary_kl(s, t) * w).sum() / B)
    assert losses["loss_kd_cls"] > 1e-3
    softmax = KDDETRLoss(**SOFTMAX)(pairs)["loss_kd_cls"]
    assert (softmax.abs() < 1e-6) if K == 1 else (softmax > 1e-3)
    same = KDDETRLoss(class_term="sigmoid")([PointPairs(t_logits, t_boxes, t_logits, t_boxes)])
    assert same["loss_kd_cls"].abs() < 1e-5


@pytest.mark.parametrize("loss", [KDDETRLoss(**SOFTMAX), BaselineKDLoss()])
def test_a_softmax_class_term_on_one_class_is_refused(loss):
    teacher, student = build_tiny_dino(num_classes=1), build_tiny_dino(num_classes=1)
    points = [TeacherQueries()] if isinstance(loss, KDDETRLoss) else [Inconsistent()]
    with pytest.raises(ValueError, match="with 1 class it is 0 whatever the logits") as e:
        KDDETR(teacher=teacher, student=student, points=points, loss=loss, allow_untrained_teacher=True)
    assert "class_term" in str(e.value) and "sigmoid" in str(e.value)  # the fix is named
    KDDETR(teacher=teacher, student=student, points=[TeacherQueries()], loss=KDDETRLoss(),
           allow_untrained_teacher=True)


# ---- Table 1 baselines --------------------------------------------------------------------------
def test_baseline_terms_equal_the_authors_formula_layer_to_layer():
    s_logits, s_boxes = random_predictions(3, seed=6)
    t_logits, t_boxes = random_predictions(3, seed=7)  # every teacher layer different
    losses = BaselineKDLoss()([PointPairs(s_logits, s_boxes, t_logits, t_boxes)])
    assert set(losses) == {f"loss_kd_{n}{tag}" for n in ("cls", "l1") for tag in ("", "_0", "_1")}
    total = {"cls": 0.0, "l1": 0.0}
    for layer, tag in ((0, "_0"), (1, "_1"), (2, "")):
        ref = ref_baseline(s_logits[layer].flatten(0, 1), s_boxes[layer].flatten(0, 1),
                           t_logits[layer].flatten(0, 1), t_boxes[layer].flatten(0, 1))
        close(losses[f"loss_kd_cls{tag}"], 10.0 * ref["cls"])
        close(losses[f"loss_kd_l1{tag}"], 1.0 * ref["l1"])
        total = {k: total[k] + ref[k] for k in total}
    # the authors log one sum over the layers: ours split per layer adds up to it
    close(sum(v for k, v in losses.items() if k.startswith("loss_kd_cls")), 10.0 * total["cls"])
    close(sum(v for k, v in losses.items() if k.startswith("loss_kd_l1")), 1.0 * total["l1"])


def test_baseline_averages_over_the_valid_points_only():
    """Similar baselines: the authors stack the matched predictions and average over them."""
    s_logits, s_boxes = random_predictions(2, seed=8)
    t_logits, t_boxes = random_predictions(2, seed=9)
    valid = torch.tensor([[True, True, False, False, False], [True, False, False, False, False],
                          [True, True, True, True, False]])
    pad = ~valid
    s_logits[:, pad] = 0.0  # padding, as SimilarForeground fills it
    t_logits[:, pad] = 0.0
    losses = BaselineKDLoss()([PointPairs(s_logits, s_boxes, t_logits, t_boxes, valid)])
    for layer, tag in ((0, "_0"), (1, "")):
        ref = ref_baseline(s_logits[layer][valid], s_boxes[layer][valid], t_logits[layer][valid], t_boxes[layer][valid])
        close(losses[f"loss_kd_cls{tag}"], 10.0 * ref["cls"])
        close(losses[f"loss_kd_l1{tag}"], ref["l1"])
    none_valid = BaselineKDLoss()([PointPairs(s_logits, s_boxes, t_logits, t_boxes, torch.zeros_like(valid))])
    assert all(v.item() == 0 for v in none_valid.values())


def test_baseline_unequal_depths_follow_stage_map():
    """A 2-layer student of a 6-layer teacher: layers [2, 5] of the teacher (the last layers meet)."""
    s_logits, s_boxes = random_predictions(2, seed=10)
    t_logits, t_boxes = random_predictions(6, seed=11)
    losses = BaselineKDLoss()([PointPairs(s_logits, s_boxes, t_logits, t_boxes)])
    for layer, t_layer, tag in ((0, 2, "_0"), (1, 5, "")):
        ref = ref_baseline(s_logits[layer].flatten(0, 1), s_boxes[layer].flatten(0, 1),
                           t_logits[t_layer].flatten(0, 1), t_boxes[t_layer].flatten(0, 1))
        close(losses[f"loss_kd_cls{tag}"], 10.0 * ref["cls"])
        close(losses[f"loss_kd_l1{tag}"], ref["l1"])


class ToyMatcher:
    """Image b's ground truth j (in reverse order) gets the query with the j-th largest logit of class 0."""

    def __call__(self, logits, boxes, targets):
        out = []
        for b, t in enumerate(targets):
            n = len(t["labels"])
            out.append((logits[b, :, 0].argsort(descending=True)[:n], torch.arange(n - 1, -1, -1)))
        return out

    def match_many(self, predictions, targets):
        return [self(logits, boxes, targets) for logits, boxes in predictions]


toy_matcher = ToyMatcher()


@pytest.mark.parametrize("background", [False, True])
def test_similar_baselines_match_every_layer_of_each_model(background):
    """Teacher layer l is put in ground-truth order by the teacher's own layer-l matching (the
    authors' per-layer teacher indices), like the student's layer l."""
    s_logits, s_boxes = random_predictions(3, B=2, N=6, seed=12)
    t_logits, t_boxes = random_predictions(3, B=2, N=6, seed=13)
    targets = [{"labels": torch.tensor([1, 2, 0])}, {"labels": torch.tensor([4])}]
    points = SimilarGeneral() if background else SimilarForeground()
    pairs = points.pair(DecoderOutput(s_logits, s_boxes, s_logits), DecoderOutput(t_logits, t_boxes, t_logits),
                        targets, toy_matcher)
    assert pairs.t_logits.shape == (3, 2, 3 + background, 7) and pairs.s_logits.shape == pairs.t_logits.shape
    expected_valid = torch.tensor([[True, True, True], [True, False, False]])
    if background:
        expected_valid = torch.cat([expected_valid, torch.ones(2, 1, dtype=torch.bool)], 1)
    assert torch.equal(pairs.valid, expected_valid)
    for ours, theirs in ((pairs.s_logits, s_logits), (pairs.t_logits, t_logits)):
        for layer in range(3):
            for b, t in enumerate(targets):
                n = len(t["labels"])
                queries = theirs[layer, b, :, 0].argsort(descending=True)[:n]
                for j in range(n):
                    torch.testing.assert_close(ours[layer, b, n - 1 - j], theirs[layer, b, queries[j]])
                if background:
                    rest = [q for q in range(6) if q not in queries.tolist()]
                    torch.testing.assert_close(ours[layer, b, -1], theirs[layer, b, rest].mean(0))


@pytest.mark.parametrize("points", [Inconsistent, SimilarForeground, SimilarGeneral])
def test_baselines_pair_layer_to_layer_in_the_model(points):
    """A student that is a copy of the teacher: every layer-to-layer baseline term is 0 (pairing
    a student layer with the teacher's last layer would not be), and positive once perturbed."""
    torch.manual_seed(0)
    teacher = build_tiny_dino(dec_layers=3)
    student = build_tiny_dino(dec_layers=3)
    student.load_state_dict(teacher.state_dict())
    model = KDDETR(teacher=teacher, student=student, points=[points()], loss=BaselineKDLoss(),
                   allow_untrained_teacher=True).train()
    batch = synthetic_batch(2)
    kd = {k: v for k, v in model(batch).items() if k.startswith("loss_kd")}
    assert set(kd) == {f"loss_kd_{n}{tag}" for n in ("cls", "l1") for tag in ("", "_0", "_1")}
    for k, v in kd.items():
        assert abs(v.item()) < 1e-4, (k, v.item())
    with torch.no_grad():
        for p in student.class_head.parameters():
            p.add_(0.5 * torch.randn_like(p))
    losses = model(batch)
    kd = {k: v for k, v in losses.items() if k.startswith("loss_kd_cls")}
    assert all(v.item() > 1e-4 for v in kd.values()), kd
    sum(losses.values()).backward()
    assert student.class_head[-1].weight.grad.abs().sum() > 0


# ---- configs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["inconsistent", "similar_foreground", "similar_general"])
def test_table1_ablation_configs_use_the_baseline_loss(name):
    cfg = LazyConfig.load(os.path.join(ROOT, f"configs/synthetic/ablations/dino_r50_r18_{name}.py"))
    assert cfg.model.loss._target_ is BaselineKDLoss
    assert dict(cfg.model.loss.weights) == {"cls": 10.0, "l1": 1.0} and cfg.model.loss.temperature == 10
    assert cfg.model.loss.beta == pytest.approx(1 / 9) and cfg.model.loss.layers == "all"
    # the method's configs: the sigmoid class term per image at its defaults (T 1, weight 0.5)
    cfg = LazyConfig.load(os.path.join(ROOT, "configs/synthetic/dino_r50_r18.py"))
    assert cfg.model.loss._target_ is KDDETRLoss and cfg.model.loss.normalization == "per_image"
    loss = instantiate(cfg.model.loss)
    assert loss.class_term == "sigmoid" and loss.temperature == 1.0
    assert loss.weights == {"cls": 0.5, "l1": 5.0, "giou": 2.0}
