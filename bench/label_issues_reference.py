#!/usr/bin/env python3
"""Compares echoseg's label issues with cleanlab's on the same out-of-sample probabilities.

A study with `[label_issues] export_probabilities = true` writes, per source, under
reports/NAME/label_issues/: SOURCE.labels.npy (N,H,W), SOURCE.pred_probs.npy (N,K,H,W: the
average of the architectures' probabilities, as echoseg scored them) and, on worlds with truth, SOURCE.truth.npy.
This script runs cleanlab's `segmentation.rank.get_label_quality_scores` (softmin, temperature
0.1) and `segmentation.filter.find_label_issues` (downsample 1) on them, measures both tools'
image scores and flagged pixels against the truth in the same way, and prints a Markdown table.

    python3 -m venv /tmp/cl && /tmp/cl/bin/pip install cleanlab numpy scikit-learn
    /tmp/cl/bin/python bench/label_issues_reference.py reports/NAME

The image order of the .npy files is the order of the average's rows of label_issues.csv.
"""
import csv
import sys
import time
from pathlib import Path

import numpy as np
from cleanlab.segmentation.filter import find_label_issues
from cleanlab.segmentation.rank import get_label_quality_scores


def concordance(scores, errors):
    """Harrell's C: over pairs with different error shares, the share where the more wrong image
    scores lower (ties in score count half); the AUROC when errors are 0 or 1."""
    scores, errors = np.asarray(scores, float), np.asarray(errors, float)
    more_wrong = errors[:, None] > errors[None, :]
    lower = scores[:, None] < scores[None, :]
    tied = scores[:, None] == scores[None, :]
    pairs = more_wrong.sum()
    return float((more_wrong & lower).sum() + 0.5 * (more_wrong & tied).sum()) / pairs if pairs else float("nan")


def main(study):
    root = Path(study)
    folder = root / "label_issues"
    quality = {(r["source"], r["scorer"]): r for r in csv.DictReader(open(root / "label_issue_quality.csv"))}
    rows = [r for r in csv.DictReader(open(root / "label_issues.csv")) if r["scorer"] == "average"]
    print("| source | tool | images | AUROC (concordance) | flagged precision | flagged recall | flagged share | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for labels_path in sorted(folder.glob("*.labels.npy")):
        source = labels_path.name[: -len(".labels.npy")]
        labels = np.load(labels_path).astype(np.int64)
        probs = np.load(folder / f"{source}.pred_probs.npy")
        truth_path = folder / f"{source}.truth.npy"
        truth = np.load(truth_path) if truth_path.exists() else None
        ours = [float(r["score"]) for r in rows if r["source"] == source]
        started = time.perf_counter()
        scores, _ = get_label_quality_scores(labels, probs, method="softmin", verbose=False)
        issues = find_label_issues(labels, probs, downsample=1, verbose=False, n_jobs=1)
        seconds = time.perf_counter() - started
        gap = np.max(np.abs(np.asarray(ours) - scores)) if len(ours) == len(scores) else float("nan")
        q = quality[(source, "average")]
        fmt = lambda v: "" if v in ("", None) else f"{float(v):.3f}"
        print(f"| {source} | echoseg | {len(ours)} | {fmt(q['auroc'])} | {fmt(q['flagged_precision'])} | {fmt(q['flagged_recall'])} | {float(q['flagged_share']):.4f} | |")
        if truth is not None:
            wrong = labels != truth
            errors = wrong.reshape(len(labels), -1).mean(axis=1)
            tp = int((issues & wrong).sum())
            precision = tp / max(int(issues.sum()), 1)
            recall = tp / max(int(wrong.sum()), 1)
            print(f"| {source} | cleanlab | {len(scores)} | {concordance(scores, errors):.3f} | {precision:.3f} | {recall:.3f} | {issues.mean():.4f} | {seconds:.1f} |")
        print(f"<!-- {source}: largest difference between echoseg's and cleanlab's softmin image scores: {gap:.2e} -->")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "reports/default")
