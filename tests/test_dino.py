import torch
from conftest import assert_eval_instances, build_tiny_dino, overfit, synthetic_batch

from kddetr.modeling.seam import Queries, QueryGroup


def test_train_forward_finite_losses_and_gradients_everywhere(tiny_dino):
    model = tiny_dino.train()
    batch = synthetic_batch(2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    # Step once first: DINO zero-initialises the last box-head layer and the deformable
    # offset/weight projections, so some gradients are exactly zero at initialisation.
    for _ in range(2):
        opt.zero_grad()
        losses = model(batch)
        expected = {"loss_class", "loss_bbox", "loss_giou", "loss_class_enc", "loss_class_dn", "loss_class_0"}
        assert expected <= set(losses)
        for k, v in losses.items():
            assert torch.isfinite(v), k
        sum(losses.values()).backward()
        opt.step()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert len(params) > 100
    missing = [n for n, p in params if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]
    assert not missing, f"parameters without gradient: {missing}"


def test_eval_returns_instances_inside_image(tiny_dino):
    assert_eval_instances(tiny_dino)


def _decode_setup(model):
    model.eval()
    batch = synthetic_batch(2)
    images, mask = model.preprocess_image(batch)
    state = model.encode(images, mask)
    targets = model.prepare_targets(batch)
    det = QueryGroup("det", model.default_queries(state))
    dn_group, meta = model.denoising(targets)
    return state, det, dn_group, meta


@torch.no_grad()
def test_denoising_groups_cannot_see_each_other_or_the_matching_part():
    tiny_dino = build_tiny_dino(dn_number=24)
    state, det, dn, meta = _decode_setup(tiny_dino)
    assert meta.num_groups >= 2
    base_det, base_dn = tiny_dino.decode(state, [det, dn])
    # perturb denoising group 0: other groups and the matching queries must not change
    g0 = slice(0, meta.group_size)
    boxes, content = dn.queries.boxes.clone(), dn.queries.content.clone()
    boxes[:, g0] += 1.0
    content[:, g0] = torch.randn_like(content[:, g0])
    perturbed = QueryGroup("dn", Queries(boxes, content), dn.self_mask, dn.sees)
    new_det, new_dn = tiny_dino.decode(state, [det, perturbed])
    torch.testing.assert_close(new_det.logits, base_det.logits)
    torch.testing.assert_close(new_det.boxes, base_det.boxes)
    torch.testing.assert_close(new_dn.logits[:, :, meta.group_size:], base_dn.logits[:, :, meta.group_size:])
    assert not torch.allclose(new_dn.logits[:, :, g0], base_dn.logits[:, :, g0])


@torch.no_grad()
def test_fused_pass_equals_separate_passes():
    tiny_dino = build_tiny_dino(dn_number=24)
    state, det, dn, meta = _decode_setup(tiny_dino)
    assert meta.num_groups >= 2
    extra = QueryGroup("points", Queries(torch.randn(2, 7, 4)))  # default content
    fused = tiny_dino.decode(state, [det, dn, extra])
    alone_det = tiny_dino.decode(state, [det])[0]
    alone_extra = tiny_dino.decode(state, [extra])[0]
    det_and_dn = tiny_dino.decode(state, [det, dn])  # dn sees det by design
    for a, b in ((fused[0], alone_det), (fused[2], alone_extra), (fused[1], det_and_dn[1])):
        torch.testing.assert_close(a.logits, b.logits, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a.boxes, b.boxes, rtol=1e-4, atol=1e-5)


def test_tiny_dino_overfits_two_images():
    torch.manual_seed(0)
    model = build_tiny_dino(embed_dim=64, ffn_dim=128, dec_layers=2, num_queries=30).train()
    batch = synthetic_batch(2, seed=3)
    first, last = overfit(model, batch)
    assert last < 0.5 * first, f"loss went from {first:.2f} to {last:.2f}"


def test_trainer_step_with_amp_and_clipping_on_cpu():
    from detectron2.utils.events import EventStorage

    from kddetr.engine import Trainer

    model = build_tiny_dino().train()
    batch = synthetic_batch(2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = Trainer(model, [batch] * 2, torch.optim.AdamW(model.parameters(), 1e-4), amp=True,
                      clip_grad_params=dict(max_norm=0.1, norm_type=2), device="cpu")
    with EventStorage(0) as storage:
        trainer.storage = storage
        trainer.iter = 0
        trainer.run_step()
        assert torch.isfinite(torch.tensor(storage.history("total_loss").latest()))
    changed = sum(not torch.equal(before[n], p) for n, p in model.named_parameters())
    assert changed > 0.9 * len(before)


def test_batch_without_boxes_keeps_every_loss_key(tiny_dino):
    from detectron2.structures import Boxes, Instances

    model = tiny_dino.train()
    full = model(synthetic_batch(2))
    batch = synthetic_batch(2, with_targets=False)
    for d in batch:
        inst = Instances((64, 64))
        inst.gt_boxes = Boxes(torch.zeros(0, 4))
        inst.gt_classes = torch.zeros(0, dtype=torch.int64)
        d["instances"] = inst
    empty = model(batch)
    assert set(empty) == set(full)
    assert all(torch.isfinite(v) for v in empty.values())
    sum(empty.values()).backward()
    assert model.denoising.label_embed.weight.grad is not None
