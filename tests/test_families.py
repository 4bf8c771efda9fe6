"""Every detector family through the same checks as DINO: losses and gradients, eval output,
fused decoding of extra query groups, overfitting two images."""
import pytest
import torch
from conftest import assert_eval_instances, build_tiny, overfit, synthetic_batch

from kddetr.modeling.seam import BOX_LOGITS, Queries, QueryGroup

NEW = ["deformable_detr", "deformable_detr_refine", "deformable_detr_two_stage", "dab_deformable_detr", "dab_detr",
       "conditional_detr"]


@pytest.mark.parametrize("family", NEW)
def test_train_forward_finite_losses_and_gradients_everywhere(family):
    model = build_tiny(family).train()
    batch = synthetic_batch(2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(2):  # zero-initialised last layers give exact zero gradients before one step
        opt.zero_grad()
        losses = model(batch)
        assert {"loss_class", "loss_bbox", "loss_giou", "loss_class_0"} <= set(losses)
        assert ("loss_class_enc" in losses) == (family == "deformable_detr_two_stage")
        for k, v in losses.items():
            assert torch.isfinite(v), k
        sum(losses.values()).backward()
        opt.step()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if family in ("dab_detr", "conditional_detr"):
        # content queries start at zero (as in both papers): the first layer's self-attention
        # content projections see a zero input, so only their biases get gradients
        zero_input = {f"decoder.layers.0.{m}.weight" for m in ("sa_q_content", "sa_k_content", "sa_v")}
        params = [(n, p) for n, p in params if n not in zero_input]
    missing = [n for n, p in params if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]
    assert not missing, f"parameters without gradient: {missing}"


@pytest.mark.parametrize("family", NEW)
def test_eval_returns_instances(family):
    assert_eval_instances(build_tiny(family))


def _extra_points(model, n=7):
    if model.query_space == BOX_LOGITS:
        return Queries(boxes=torch.randn(2, n, 4))
    return Queries(embeds=torch.randn(2, n, model.embed_dim))


@pytest.mark.parametrize("family", NEW)
@torch.no_grad()
def test_fused_pass_equals_separate_passes(family):
    model = build_tiny(family).eval()
    batch = synthetic_batch(2)
    state = model.encode(*model.preprocess_image(batch))
    det = QueryGroup("det", model.default_queries(state))
    a = QueryGroup("a", _extra_points(model))
    b = QueryGroup("b", _extra_points(model, 5))
    fused = model.decode(state, [det, a, b])
    for group, out in zip([det, a, b], fused):
        alone = model.decode(state, [group])[0]
        torch.testing.assert_close(out.logits, alone.logits, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out.boxes, alone.boxes, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["deformable_detr", "dab_deformable_detr", "dab_detr", "conditional_detr"])
def test_tiny_model_overfits_two_images(family):
    torch.manual_seed(0)
    model = build_tiny(family, embed_dim=64, ffn_dim=128, dec_layers=2, num_queries=30).train()
    batch = synthetic_batch(2, seed=3)
    first, last = overfit(model, batch)
    assert last < 0.5 * first, f"loss went from {first:.2f} to {last:.2f}"
