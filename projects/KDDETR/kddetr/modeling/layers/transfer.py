"""Host-to-device copies that do not make the host wait for the device."""
from __future__ import annotations

import torch
from torch import Tensor


def to_device(host: Tensor, device: torch.device) -> Tensor:
    """``host`` (a CPU tensor) on ``device``: through pinned memory with a non-blocking copy, so the host goes on
    queueing work (a copy from pageable memory waits for everything queued before it); itself on the CPU."""
    device = torch.device(device)
    if device.type == "cpu":
        return host
    return host.pin_memory().to(device, non_blocking=True)
