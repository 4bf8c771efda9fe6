import itertools

import torch

from kddetr.modeling import HungarianMatcher


def brute_force_cost(cost: torch.Tensor) -> float:
    """Minimum total cost of assigning every target (column) to a distinct query (row)."""
    Q, T = cost.shape
    return min(sum(cost[q, t].item() for t, q in enumerate(perm)) for perm in itertools.permutations(range(Q), T))


def test_matcher_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    matcher = HungarianMatcher(cost_class=2.0, cost_bbox=5.0, cost_giou=2.0)
    for trial in range(12):
        B, Q, K = 2, 5, 4
        T = [1 + trial % 3, (trial * 2) % 4]  # includes an image without targets
        logits = torch.randn(B, Q, K, generator=g)
        boxes = torch.rand(B, Q, 4, generator=g) * 0.5 + 0.2
        targets = [{"labels": torch.randint(0, K, (t,), generator=g),
                    "boxes": torch.rand(t, 4, generator=g) * 0.5 + 0.2} for t in T]
        indices = matcher(logits, boxes, targets)
        for b, (rows, cols) in enumerate(indices):
            assert len(rows) == len(cols) == T[b]
            if T[b] == 0:
                continue
            cost = matcher.cost_matrix(logits[b], boxes[b], targets[b]["labels"], targets[b]["boxes"])
            got = cost[rows, cols].sum().item()
            assert abs(got - brute_force_cost(cost)) < 1e-5
            assert len(set(rows.tolist())) == T[b]  # one-to-one


def test_matcher_prefers_the_right_box():
    matcher = HungarianMatcher()
    boxes = torch.tensor([[[0.2, 0.2, 0.1, 0.1], [0.7, 0.7, 0.2, 0.2]]])
    logits = torch.zeros(1, 2, 3)
    targets = [{"labels": torch.tensor([1]), "boxes": torch.tensor([[0.7, 0.7, 0.2, 0.2]])}]
    rows, cols = matcher(logits, boxes, targets)[0]
    assert rows.tolist() == [1] and cols.tolist() == [0]


def test_a_batch_without_targets_is_matched_on_the_device_of_the_logits():
    """No targets in the whole batch: every index tensor is empty, int64 and on the logits' device (the meta
    device stands in for a GPU here: a tensor created on the CPU would show)."""
    logits, boxes = torch.zeros(2, 5, 3, device="meta"), torch.zeros(2, 5, 4, device="meta")
    targets = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)} for _ in range(2)]
    assignment = HungarianMatcher()(logits, boxes, targets)
    assert len(assignment) == 2
    for index in (t for pair in assignment for t in pair):
        assert index.device == logits.device and index.dtype == torch.int64 and index.numel() == 0
