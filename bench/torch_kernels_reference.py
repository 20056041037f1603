"""PyTorch's numbers for every kernel of the reference U-Net at its own shapes, gradients too.

Writes `crates/echoseg-kernels/tests/torch_reference.json`, which the test `against_torch.rs`
compares the kernels with, so a faster kernel can never buy a wrong answer unnoticed. The test
itself never runs PyTorch: the numbers are stored.

Every input is the same fixed pattern the test builds (`pattern` below), so nothing random has to
travel. For each operation the loss is `sum(output * r)` with a second pattern `r`; stored per
tensor (output and each gradient): its sum and sum of magnitudes in float64, its largest
magnitude, and 64 values at fixed positions.

    python3 -m venv DIR && DIR/bin/pip install torch numpy
    DIR/bin/python bench/torch_kernels_reference.py
"""

import json
import pathlib

import torch
import torch.nn.functional as F

BATCH = 16
# (in, out, side, kernel, dilation): the reference unet's convolutions (width 16, depth 3, 64 px),
# its 1x1 head, and the dilated network's 3x3 convolutions at dilations 2 and 4 at the same size.
CONVS = [
    (3, 16, 64, 3, 1),
    (16, 16, 64, 3, 1),
    (16, 32, 32, 3, 1),
    (32, 32, 32, 3, 1),
    (32, 64, 16, 3, 1),
    (64, 64, 16, 3, 1),
    (96, 32, 32, 3, 1),
    (48, 16, 64, 3, 1),
    (16, 4, 64, 1, 1),
    (16, 16, 64, 3, 2),
    (16, 16, 64, 3, 4),
]
# (channels, side): the activations each BatchNorm + ReLU, pooling and up-sampling sees
NORMS = [(16, 64), (32, 32), (64, 16)]
POOLS = [(16, 64), (32, 32)]
RESIZES = [(64, 16, 32), (32, 32, 64)]
SAMPLES = 64


def pattern(shape, seed):
    """Values in [-1, 1): ((i * 2654435761 + seed * 97) mod 10007) / 5003.5 - 1 at flat index i."""
    n = 1
    for d in shape:
        n *= d
    i = torch.arange(n, dtype=torch.int64)
    return (((i * 2654435761 + seed * 97) % 10007).to(torch.float64) / 5003.5 - 1.0).to(torch.float32).reshape(shape)


def summary(t):
    flat = t.detach().reshape(-1)
    n = flat.numel()
    positions = [(k * 7919 + 13) % n for k in range(SAMPLES)]
    wide = flat.to(torch.float64)
    return {
        "len": n,
        "sum": wide.sum().item(),
        "abs_sum": wide.abs().sum().item(),
        "max_abs": wide.abs().max().item(),
        "samples": [[p, flat[p].item()] for p in positions],
    }


def ramp(channels, scale, offset):
    """Per-channel values as the test's `ramp`: sin(c * 0.37 + offset) * scale."""
    c = torch.arange(channels, dtype=torch.float32)
    return (c * 0.37 + offset).sin() * scale


def conv_case(cin, cout, side, kernel, dilation):
    x = pattern([BATCH, cin, side, side], 1).requires_grad_()
    w = (pattern([cout, cin, kernel, kernel], 2) * 0.2).requires_grad_()
    r = pattern([BATCH, cout, side, side], 3)
    y = F.conv2d(x, w, padding=dilation * (kernel - 1) // 2, dilation=dilation)
    (y.double() * r).sum().backward()
    return {"cin": cin, "cout": cout, "side": side, "kernel": kernel, "dilation": dilation,
            "y": summary(y), "dx": summary(x.grad), "dw": summary(w.grad)}


def norm_case(channels, side):
    x = (pattern([BATCH, channels, side, side], 7) * 2.0 + 0.5).requires_grad_()
    gamma = ramp(channels, 1.5, 0.3).requires_grad_()
    beta = ramp(channels, 0.8, 1.1).requires_grad_()
    r = pattern([BATCH, channels, side, side], 8)
    y = F.relu(F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5))
    (y.double() * r).sum().backward()
    return {"channels": channels, "side": side, "y": summary(y), "dx": summary(x.grad),
            "dgamma": summary(gamma.grad), "dbeta": summary(beta.grad)}


def pool_case(channels, side):
    # after a ReLU, so ties at 0 are common
    x = (pattern([BATCH, channels, side, side], 4) - 0.33).clamp(min=0.0).requires_grad_()
    y = F.max_pool2d(x, 2)
    r = pattern(list(y.shape), 5)
    (y.double() * r).sum().backward()
    return {"channels": channels, "side": side, "y": summary(y), "dx": summary(x.grad)}


def resize_case(channels, side, out):
    x = pattern([BATCH, channels, side, side], 4).requires_grad_()
    # burn's bilinear interpolation aligns the corners
    y = F.interpolate(x, size=(out, out), mode="bilinear", align_corners=True)
    r = pattern(list(y.shape), 5)
    (y.double() * r).sum().backward()
    return {"channels": channels, "side": side, "out": out, "y": summary(y), "dx": summary(x.grad)}


def main():
    torch.set_num_threads(2)
    reference = {
        "torch": torch.__version__,
        "batch": BATCH,
        "convs": [conv_case(*c) for c in CONVS],
        "norms": [norm_case(*c) for c in NORMS],
        "pools": [pool_case(*c) for c in POOLS],
        "resizes": [resize_case(*c) for c in RESIZES],
    }
    path = pathlib.Path(__file__).resolve().parent.parent / "crates/echoseg-kernels/tests/torch_reference.json"
    # one case per line, so a change of PyTorch's numbers shows as a readable diff
    lines = [f' "{key}": {json.dumps(value)}' if not isinstance(value, list)
             else f' "{key}": [\n' + ",\n".join("  " + json.dumps(case) for case in value) + "\n ]"
             for key, value in reference.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {path} (PyTorch {torch.__version__})")


if __name__ == "__main__":
    main()
