"""The reference U-Net of `echoseg bench` in PyTorch, for a paired speed comparison.

Same network (width 16, 3 levels, two 3x3 conv + BatchNorm + ReLU per block, 2x2 max-pool,
bilinear x2 up-sampling, concatenated skips, 1x1 head, 4 classes), same shapes (64 x 64, batch 16,
3 input channels), Adam, the same number of warm-up and timed steps, the same threads.
Prints one JSON line: train and inference images per second.

    python3 -m venv DIR && DIR/bin/pip install torch numpy
    DIR/bin/python bench/torch_reference.py --threads 2

`just bench-torch DIR/bin/python` runs echoseg and this one after the other, five times
(`--pairs 5`), and prints every pair's ratios and their medians.
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
    parser.add_argument("--pairs", type=int, default=0,
                        help="run this many pairs, echoseg (--echoseg-command) then PyTorch, one after the other, "
                             "and print every pair and the median ratios (a shared machine's speed drifts, "
                             "so a ratio from one pair can be off by a fifth)")
    parser.add_argument("--echoseg-command", default="cargo run --release -q -p echoseg --",
                        help="how to start echoseg for --pairs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.pairs > 0:
        return paired(args)
    train, infer = measure(args)
    print(json.dumps({"torch": torch.__version__, "threads": args.threads, "train_images_per_second": train,
                      "infer_images_per_second": infer}))
    if args.echoseg:
        with open(args.echoseg) as f:
            ours = json.load(f)
        print(f"cpu: {ours['cpu']}, threads: echoseg {ours['threads']}, PyTorch {args.threads}")
        for what, ratio in ratios(unet_result(ours), train, infer):
            print(f"{what:>24}: {ratio}")


KEYS = [("train", "train_images_per_second", 0), ("infer", "infer_images_per_second", 1),
        ("infer, BatchNorm folded", "infer_fused_images_per_second", 1)]


def unet_result(ours):
    return next(r for r in ours["results"] if r["case"]["network"]["architecture"] == "unet")


def ratios(unet, train, infer):
    torch_values = (train, infer)
    return [(what, f"echoseg {unet[key]:7.1f} img/s, PyTorch {torch_values[i]:7.1f} img/s, ratio {unet[key] / torch_values[i]:.2f}")
            for what, key, i in KEYS]


def paired(args):
    import shlex
    import statistics
    import subprocess

    command = shlex.split(args.echoseg_command) + [
        "bench", "--arch", "unet", "--threads", str(args.threads), "--size", str(args.size), "--batch",
        str(args.batch), "--width", str(args.width), "--steps", str(args.steps), "--json"]
    per_key = {what: [] for what, _, _ in KEYS}
    cpu = None
    for pair in range(1, args.pairs + 1):
        ours = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        cpu = ours["cpu"]
        train, infer = measure(args)
        unet = unet_result(ours)
        print(f"pair {pair}:")
        for (what, line), (_, key, i) in zip(ratios(unet, train, infer), KEYS):
            print(f"  {what:>24}: {line}")
            per_key[what].append(unet[key] / (train, infer)[i])
    print(f"cpu: {cpu}, {args.threads} threads, PyTorch {torch.__version__}, {args.pairs} pairs")
    for what, values in per_key.items():
        print(f"{what:>24}: median ratio {statistics.median(values):.2f} (range {min(values):.2f}-{max(values):.2f})")


def measure(args):
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
    return train, infer


if __name__ == "__main__":
    main()
