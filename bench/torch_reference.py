"""The reference U-Net of `echoseg bench` in PyTorch, for a paired speed comparison.

Same network (width 16, 3 levels, two 3x3 conv + BatchNorm + ReLU per block, 2x2 max-pool,
bilinear x2 up-sampling, concatenated skips, 1x1 head, 4 classes), same shapes (64 x 64, batch 16,
3 input channels), Adam, the same number of warm-up and timed steps, the same threads.
Prints one JSON line: train and inference images per second.

    python3 -m venv DIR && DIR/bin/pip install torch numpy
    DIR/bin/python bench/torch_reference.py --threads 2

`just bench-torch` runs this and `echoseg bench` one after the other and prints the ratios.
"""

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def block(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(block(cin, cout), block(cout, cout))


class Unet(nn.Module):
    def __init__(self, inputs=3, classes=4, width=16, depth=3):
        super().__init__()
        ch = [width << level for level in range(depth)]
        self.down = nn.ModuleList(DoubleConv(inputs if l == 0 else ch[l - 1], ch[l]) for l in range(depth))
        self.up = nn.ModuleList(DoubleConv(ch[l + 1] + ch[l], ch[l]) for l in reversed(range(depth - 1)))
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x):
        skips = []
        for level, down in enumerate(self.down):
            if level > 0:
                x = F.max_pool2d(x, 2)
            x = down(x)
            skips.append(x)
        skips.pop()
        for up in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = up(torch.cat([x, skip], 1))
        return self.head(x)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--echoseg", help="echoseg bench --json output of the same case: print the ratios too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)

    model = Unet(width=args.width)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.rand(args.batch, 3, args.size, args.size)
    targets = torch.randint(0, 4, (args.batch, args.size, args.size))

    def step():
        optimiser.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), targets)
        loss.backward()
        optimiser.step()

    model.train()
    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    train = args.steps * args.batch / (time.perf_counter() - start)

    model.eval()
    with torch.inference_mode():
        for _ in range(2):
            model(images)
        start = time.perf_counter()
        for _ in range(args.steps):
            model(images)
        infer = args.steps * args.batch / (time.perf_counter() - start)

    print(json.dumps({"torch": torch.__version__, "threads": args.threads, "train_images_per_second": train,
                      "infer_images_per_second": infer}))
    if args.echoseg:
        with open(args.echoseg) as f:
            ours = json.load(f)
        unet = next(r for r in ours["results"] if r["case"]["network"]["architecture"] == "unet")
        print(f"cpu: {ours['cpu']}, threads: echoseg {ours['threads']}, PyTorch {args.threads}")
        for what, torch_value, key in [("train", train, "train_images_per_second"),
                                       ("infer", infer, "infer_images_per_second"),
                                       ("infer, BatchNorm folded", infer, "infer_fused_images_per_second")]:
            print(f"{what:>24}: echoseg {unet[key]:7.1f} img/s, PyTorch {torch_value:7.1f} img/s, ratio {unet[key] / torch_value:.2f}")


if __name__ == "__main__":
    main()
