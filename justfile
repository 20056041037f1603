# echoseg tasks. `just --list` shows them.

# Run a study (default: the quick one) and write reports/NAME/index.html. Extra arguments go to
# `echoseg run`, e.g. `just experiment experiments/default.toml --resume`.
experiment manifest="experiments/default.toml" *args:
    cargo run --release -p echoseg -- run {{manifest}} {{args}}

# Many generations: experiments/collapse.toml, self and cross for five generations, pseudo-labels
# replaced and accumulated, every bias's trend in reports/collapse/trends.csv. Extra arguments go
# to `echoseg run`, e.g. `--resume`.
collapse *args:
    cargo run --release -p echoseg -- run experiments/collapse.toml {{args}}

# Write a study's images and masks as PNG folders (what experiments/folder-example.toml reads).
generate manifest="experiments/default.toml" out="experiments/data/default-world":
    cargo run --release -p echoseg -- generate {{manifest}} --out {{out}}

# Write the multi-rater folder dataset experiments/folder-raters.toml reads: three classic
# algorithms' masks on every image of the default world, with exact truth.
generate-raters:
    cargo run --release -p echoseg -- generate experiments/raters-world.toml --out experiments/data/raters-world --every-image

# Re-render the report of a finished study.
report name="default":
    cargo run --release -p echoseg -- report {{name}}

# Check a manifest without training.
validate manifest="experiments/default.toml":
    cargo run --release -p echoseg -- validate {{manifest}}

# The test suite (the same command CI runs).
test:
    cargo test --workspace --release

# Lints, as CI runs them.
lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Training and inference throughput and peak memory of every architecture; writes reports/bench.json.
bench *args:
    cargo run --release -p echoseg -- bench --out reports/bench.json {{args}}

# The reference unet (64 × 64, batch 16, 2 threads) in echoseg and then in PyTorch, five pairs one
# after the other, each pair's ratios and their medians. Needs a Python with torch:
# `python3 -m venv DIR && DIR/bin/pip install torch numpy`, then `just bench-torch DIR/bin/python`.
bench-torch python="python3" pairs="5":
    cargo build --release -q -p echoseg
    {{python}} bench/torch_reference.py --threads 2 --pairs {{pairs}}

# PyTorch's outputs and gradients for every kernel of the reference unet at its shapes, stored in
# crates/echoseg-kernels/tests/torch_reference.json for the test suite (which never runs PyTorch).
torch-reference python="python3":
    {{python}} bench/torch_kernels_reference.py

# The runs a manifest expands to, with a time estimate from a short timing.
plan manifest="experiments/default.toml" *args:
    cargo run --release -p echoseg -- plan {{manifest}} {{args}}

# Run the known-answer studies of experiments/validation/ and print, check by check, whether the
# verdicts come out right (about 8 minutes on 2 cores: 490 s on 2026-12-03). Extra arguments go to
# `echoseg answers`.
validate-verdicts *args:
    cargo run --release -p echoseg -- answers experiments/validation/*.toml {{args}}

# The null comparison with real networks: experiments/validation/null-self.toml (students retrained
# on the labels with fresh seeds, so every true change is 0) under ten study seeds, 100 verdicts,
# then the count of each verdict: every direction is a false one (about 30 minutes on 2 cores).
# Extra arguments go to `echoseg run`, e.g. `--set study.max_repeats=8` for the adaptive seeds.
validate-null seeds="10" *args:
    #!/usr/bin/env bash
    set -euo pipefail
    for s in $(seq 1 {{seeds}}); do
        cargo run --release -q -p echoseg -- run experiments/validation/null-self.toml --quiet --set seed=$s --set name=validation-null-self-s$s {{args}}
    done
    awk -F, 'FNR == 1 { for (i = 1; i <= NF; i++) if ($i == "verdict") v = i; next } { n[$v]++; t++ } END { for (k in n) printf "%-10s %d\n", k, n[k]; printf "of %d comparisons (a direction here is a false one)\n", t }' reports/validation-null-self-s*/verdicts.csv
