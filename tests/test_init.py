"""Initialisation of every family as detrex's modules initialise it (docs/ARCHITECTURE.md,
"Initialisation"). The expectations are written from detrex's code, not from ours: which of our
parameters detrex's ``transformer`` holds (xavier over every >1-D weight), which the detector
holds (PyTorch's default, the focal prior, zero last box layer, the family's query init)."""
import math

import pytest
import torch
from conftest import FAMILIES, build_tiny, synthetic_batch

from kddetr.modeling.layers import MSDeformAttn
from kddetr.modeling.seam import QueryGroup

PRIOR_BIAS = -math.log(99.0)  # foreground probability 0.01

# our names of what detrex's ``transformer`` module holds, per family (xavier_uniform_ over >1-D)
TRANSFORMER = {
    "dino": ("encoder.", "decoder.", "level_embed", "tgt_embed.", "enc_output."),
    "deformable_detr": ("encoder.", "decoder.", "level_embed", "reference_points."),
    "deformable_detr_refine": ("encoder.", "decoder.", "level_embed", "reference_points."),
    "deformable_detr_two_stage": ("encoder.", "decoder.", "level_embed", "enc_output.", "pos_trans."),
    "dab_deformable_detr": ("encoder.", "decoder.", "level_embed"),
    "dab_detr": ("encoder.", "decoder."),
    "conditional_detr": ("encoder.", "decoder.", "reference_points."),
}
# initialised by the family's own code: backbone, neck (xavier, checked below), input projection
OWN_INIT = ("backbone.", "neck.", "input_proj.")
HEADS = ("class_head", "box_head", "enc_class_head", "enc_box_head")
# learned queries detrex keeps at nn.Embedding's N(0, 1)
NORMAL = {"dino": ("denoising.label_embed.weight",), "deformable_detr": ("query_embed.weight",),
          "deformable_detr_refine": ("query_embed.weight",), "conditional_detr": ("query_embed.weight",)}
# per family: (w, h) bias of the first box head, of the others
SIZE_BIAS = {"deformable_detr": (-2.0, None), "deformable_detr_refine": (-2.0, 0.0),
             "deformable_detr_two_stage": (0.0, 0.0), "dab_deformable_detr": (-2.0, 0.0), "dino": (0.0, 0.0),
             "dab_detr": (0.0, None), "conditional_detr": (0.0, None)}


def build(family, **kw):
    return build_tiny(family, **{"num_queries": 300, **kw})


def xavier_std(w):
    fan_out, fan_in = w.shape[0], w[0].numel()
    return math.sqrt(2.0 / (fan_in + fan_out))


def default_linear_std(w):
    """nn.Linear's kaiming_uniform_(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return 1.0 / math.sqrt(3.0 * w.shape[1])


def std_tolerance(n):
    """5 sigma of a sample std over n draws (uniform or normal), plus 2 %."""
    return 0.02 + 5 * 0.71 / math.sqrt(n)


def heads(model, name):
    h = getattr(model, name, None)
    if h is None:
        return []
    return list(h) if isinstance(h, torch.nn.ModuleList) else [h]


def expected_std(family, name, p):
    """What detrex's initialisation gives ``name``'s std (0 for zeros), or None if checked elsewhere."""
    if name.startswith(OWN_INIT) or name == "anchor_box_embed.weight":
        return None
    if name.endswith(("sampling_offsets.weight", "attention_weights.weight")):
        return 0.0  # MultiScaleDeformableAttention.init_weights, after the transformer's xavier
    if name == "level_embed" or name in NORMAL.get(family, ()):
        return 1.0
    if family == "dab_deformable_detr" and name == "tgt_embed.weight":
        return 0.0
    if name.startswith(TRANSFORMER[family]):
        return xavier_std(p)
    if name.startswith(HEADS):
        return 0.0 if name.endswith("layers.2.weight") else default_linear_std(p)
    raise AssertionError(f"{family}: no expectation for {name} {tuple(p.shape)}; add it from detrex's code")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_weight_statistics_match_detrex(family):
    model = build(family)
    checked, pooled = 0, []
    for name, p in model.named_parameters():
        if p.dim() < 2:
            continue
        want = expected_std(family, name, p)
        if want is None:
            continue
        got = p.detach().std().item()
        if want == 0.0:
            assert torch.count_nonzero(p) == 0, name
        else:
            assert abs(got / want - 1) < std_tolerance(p.numel()), f"{name}: std {got:.4f}, detrex {want:.4f}"
            if name.startswith(TRANSFORMER[family]) and name != "level_embed":
                pooled.append(p.detach().flatten() / want)
        checked += 1
    assert checked > 10
    # all xavier weights together: std within 3 % (PyTorch's default gives 0.5 to 0.7 here)
    assert abs(torch.cat(pooled).std().item() - 1) < 0.03


@pytest.mark.parametrize("family", ["dino", "deformable_detr", "dab_deformable_detr"])
def test_content_queries(family):
    model = build(family)
    if family == "dino":  # xavier over [N, D]: about 0.078 here, 0.041 for 900 x 256 (not nn.Embedding's 1.0)
        w = model.tgt_embed.weight
        assert abs(w.std().item() / xavier_std(w) - 1) < 0.05 and w.abs().max() <= math.sqrt(3) * xavier_std(w)
    elif family == "deformable_detr":  # position | content halves of query_embedding: N(0, 1)
        assert abs(model.query_embed.weight.std().item() - 1) < 0.05
    else:
        assert torch.count_nonzero(model.tgt_embed.weight) == 0


@pytest.mark.parametrize("family", list(FAMILIES))
def test_heads_match_detrex(family):
    model = build(family)
    classes = heads(model, "class_head") + heads(model, "enc_class_head")
    boxes = heads(model, "box_head") + heads(model, "enc_box_head")
    for h in classes:
        torch.testing.assert_close(h.bias, torch.full_like(h.bias, PRIOR_BIAS))
        torch.testing.assert_close(h.weight, classes[0].weight)  # detrex deep-copies one head
    first, others = SIZE_BIAS[family]
    for i, h in enumerate(boxes):
        last = h.layers[-1]
        assert torch.count_nonzero(last.weight) == 0 and torch.count_nonzero(last.bias[:2]) == 0
        torch.testing.assert_close(last.bias[2:], torch.full((2,), first if i == 0 else others))
        for a, b in zip(h.layers[:-1], boxes[0].layers[:-1]):
            torch.testing.assert_close(a.weight, b.weight)


@pytest.mark.parametrize("family", [f for f in FAMILIES if not f.startswith(("dab_detr", "conditional"))])
def test_deformable_attention_init(family):
    model = build(family)
    modules = [m for m in model.modules() if isinstance(m, MSDeformAttn)]
    assert len(modules) == 3  # 1 encoder + 2 decoder layers
    for m in modules:
        H, L, P = m.num_heads, m.num_levels, m.num_points
        grid = torch.zeros(H, L, P, 2)
        for h in range(H):
            angle = 2 * math.pi * h / H
            d = torch.tensor([math.cos(angle), math.sin(angle)])
            for p in range(P):
                grid[h, :, p] = d / d.abs().max() * (p + 1)
        torch.testing.assert_close(m.sampling_offsets.bias.view(H, L, P, 2), grid)
        for lin in (m.sampling_offsets, m.attention_weights):
            assert torch.count_nonzero(lin.weight) == 0
        assert torch.count_nonzero(m.attention_weights.bias) == 0
        for lin in (m.value_proj, m.output_proj):
            assert torch.count_nonzero(lin.bias) == 0
            assert abs(lin.weight.std().item() / xavier_std(lin.weight) - 1) < 0.15


def test_dab_detr_anchors():
    """detrex: N(0, 1), then centres inverse_sigmoid(U(0, 1)); sizes sigmoid(N(0, 1))."""
    a = build("dab_detr", num_queries=2000).anchor_box_embed.weight.detach()
    centers = a[:, :2].sigmoid()
    assert abs(centers.mean().item() - 0.5) < 0.02 and abs(centers.std().item() - math.sqrt(1 / 12)) < 0.02
    assert abs(a[:, 2:].mean().item()) < 0.1 and abs(a[:, 2:].std().item() - 1) < 0.05


def test_dab_deformable_detr_anchors():
    """detrex: inverse_sigmoid(U(0, 1)) in all four coordinates, clamped to [-3, 3]."""
    a = build("dab_deformable_detr", num_queries=2000).anchor_box_embed.weight.detach()
    assert a.abs().max() <= 3.0 and (a.abs() == 3.0).any()
    boxes = a.sigmoid()
    assert abs(boxes.mean().item() - 0.5) < 0.02 and abs(boxes.std().item() - math.sqrt(1 / 12)) < 0.02


def test_neck_as_detrex():
    model = build("dino")
    for m in model.neck.modules():
        if isinstance(m, torch.nn.Conv2d):
            assert torch.count_nonzero(m.bias) == 0
            assert abs(m.weight.std().item() / xavier_std(m.weight) - 1) < std_tolerance(m.weight.numel())


def layer_widths(model):
    """Mean predicted width per decoder layer at initialisation, eval mode, two synthetic images."""
    model.eval()
    with torch.no_grad():
        state = model.encode(*model.preprocess_image(synthetic_batch(2)))
        out = model.decode(state, [QueryGroup("det", model.default_queries(state))])[0]
    return out.boxes[..., 2]  # [layers, B, N]


@pytest.mark.parametrize("family", ["deformable_detr_refine", "deformable_detr_two_stage", "dab_deformable_detr",
                                    "dino", "dab_detr"])
def test_refined_boxes_keep_their_size_through_the_layers(family):
    """With box refinement, layer 6 starts with the widths of layer 1 (the size bias is on the
    first box head only); before, Deformable DETR's went 0.119, 0.018, ... 2e-6."""
    widths = layer_widths(build(family, dec_layers=6))
    first, last = widths[0].flatten(), widths[-1].flatten()
    assert 0.8 < last.mean() / first.mean() < 1.25, widths.mean((1, 2)).tolist()
    for q in (0.1, 0.5, 0.9):
        assert 0.8 < last.quantile(q) / first.quantile(q) < 1.25


def test_deformable_detr_first_layer_width():
    """Deformable DETR's first box head: (w, h) = sigmoid(-2) around a point reference."""
    for family in ("deformable_detr", "deformable_detr_refine"):
        widths = layer_widths(build(family, dec_layers=6))
        torch.testing.assert_close(widths[0], torch.full_like(widths[0], 1 / (1 + math.exp(2.0))))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_init_depends_on_the_rng_only(family):
    a, b = build(family), build(family)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    own = {k: v.clone() for k, v in a.state_dict().items() if k.startswith(OWN_INIT)}
    torch.manual_seed(5)
    a.init_weights()
    torch.manual_seed(5)
    b.init_weights()
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    for k, v in own.items():  # backbone, neck, input projection: their own init, not touched again
        assert torch.equal(a.state_dict()[k], v), k
