//! Label issues end to end: cross-fitted networks score every labelled image, the tables cover
//! each image once, the exported arrays reproduce the scores, and a source that gives objects
//! the wrong class at random is caught where it did.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::BTreeMap;
use std::path::Path;

use echoseg_agree::{ClassProbabilities, image_score};
use echoseg_tests::{Scratch, run_quietly};

const MANIFEST: &str = r#"
name = "issues"
seed = 3

[world]
size = 32
classes = ["blob", "box"]
min_objects = 2
max_objects = 4

[[sources]]
name = "careful"
kind = "exact"
images = 24

# Traces every object exactly but gives about a third of them the other class: its errors are
# whole objects, different in every image.
[[sources]]
name = "slips"
kind = "manual"
images = 24
class_slip = 0.3

[split]
validation = 0.25
test = 8
pool = 0

[nets]
architectures = ["fcn", "dilated"]
fcn = { width = 8, depth = 4 }
dilated = { width = 8, depth = 2 }

[train]
steps = 300
batch_size = 8

[study]
generations = 0
ceiling = false

[label_issues]
folds = 2
worst = 2
export_probabilities = true
"#;

fn csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines.map(|l| header.iter().map(|h| h.to_string()).zip(l.split(',').map(str::to_string)).collect()).collect()
}

/// The shape and data bytes of a NumPy file as echoseg writes it.
fn npy(path: &Path) -> (Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let header = String::from_utf8_lossy(&bytes[10..10 + len]).into_owned();
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    (shape.split(',').filter_map(|d| d.trim().parse().ok()).collect(), bytes[10 + len..].to_vec())
}

#[test]
fn every_labelled_image_is_scored_out_of_sample_and_objects_given_the_wrong_class_are_found() {
    let scratch = Scratch::new("label-issues");
    let path = scratch.write("issues.toml", MANIFEST);
    let reports = scratch.path().join("reports");
    let page = run_quietly(&path, &reports).unwrap();
    let study = reports.join("issues");

    // 24 images per source, a quarter for validation: all 48 labelled images, once per scorer.
    let rows = csv(&study.join("label_issues.csv"));
    for scorer in ["average", "fcn", "dilated"] {
        for source in ["careful", "slips"] {
            let mine: Vec<_> = rows.iter().filter(|r| r["scorer"] == scorer && r["source"] == source).collect();
            assert_eq!(mine.len(), 24, "{scorer} {source}");
            let mut ranks: Vec<usize> = mine.iter().map(|r| r["rank"].parse().unwrap()).collect();
            ranks.sort_unstable();
            assert_eq!(ranks, (1..=24).collect::<Vec<_>>());
            assert_eq!(mine.iter().filter(|r| r["split"] == "validation").count(), 6);
        }
    }
    // The cross-fitting runs serve the label issues only: no row of the results tables.
    let results = std::fs::read_to_string(study.join("results.csv")).unwrap();
    assert!(!results.contains("crossfit"), "cross-fitting runs leaked into results.csv");
    let runs = std::fs::read_dir(study.join("runs"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("crossfit-"))
        .count();
    assert_eq!(runs, 4, "two architectures × two folds");

    // The exported arrays are what was scored: the average's softmin recomputed from them is the table's.
    let (shape, labels) = npy(&study.join("label_issues/slips.labels.npy"));
    let (pshape, probs) = npy(&study.join("label_issues/slips.pred_probs.npy"));
    assert_eq!((shape.clone(), pshape.clone()), (vec![24, 32, 32], vec![24, 3, 32, 32]));
    let probs: Vec<f32> = probs.chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let average: Vec<f64> =
        rows.iter().filter(|r| r["scorer"] == "average" && r["source"] == "slips").map(|r| r["score"].parse().unwrap()).collect();
    for (i, expected) in average.iter().enumerate() {
        let given = &labels[i * 1024..(i + 1) * 1024];
        let values = ClassProbabilities { classes: 3, values: &probs[i * 3072..(i + 1) * 3072] };
        assert!((image_score(given, values, 0.1) - expected).abs() < 1e-9, "image {i}");
    }

    // Known answers. The exact source has no wrong pixel. The slipping source's wrong pixels are
    // whole objects of the other class, a different third in every image, which out-of-sample
    // networks do not learn: flagged pixels are mostly those, far above the share a random
    // flag would hit, and the common confusion is the other class, not background.
    let quality = csv(&study.join("label_issue_quality.csv"));
    let of = |source: &str| quality.iter().find(|q| q["source"] == source && q["scorer"] == "average").unwrap();
    assert_eq!(of("careful")["error_share"].parse::<f64>().unwrap(), 0.0);
    let slips = of("slips");
    let number = |key: &str| -> f64 { slips[key].parse().unwrap() };
    let (error, precision, recall, auroc) = (number("error_share"), number("flagged_precision"), number("flagged_recall"), number("auroc"));
    assert!(error > 0.01, "about a third of the objects slipped: {error}");
    assert!(precision > 10.0 * error, "flagged pixels are wrong {precision} of the time, against {error} for a random flag");
    assert!(recall > 0.4, "flagged {recall} of the wrong pixels");
    assert!(auroc > 0.5, "images with more slipped pixels score lower: AUROC {auroc}");
    let confusions = csv(&study.join("label_issue_confusions.csv"));
    let given_blob = |predicted: &str| -> u64 {
        let row = confusions.iter().find(|c| c["source"] == "slips" && c["given"] == "blob" && c["predicted"] == predicted).unwrap();
        row["pixels"].parse().unwrap()
    };
    assert!(given_blob("box") > given_blob("background"), "blobs the source gave are boxes to the average more often than background");

    // The report shows the section, its figure and the worst two images of each source.
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("id=\"label-issues\"") && html.contains("figures/label-issues-"), "no label-issue section");
    let worst: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(study.join("label_issues/worst.json")).unwrap()).unwrap();
    assert_eq!(worst["images"].as_array().unwrap().len(), 4);

    // Re-tabled without the export, the earlier arrays are removed rather than left to pass for this study's.
    let path = scratch.write("issues.toml", &MANIFEST.replace("export_probabilities = true", "export_probabilities = false"));
    let invocation = echoseg::Invocation { manifest: path, overrides: vec![] };
    echoseg::run(&invocation, &reports, &echoseg::RunOptions { quiet: true, resume: true, ..Default::default() }, "test").unwrap();
    let npy = std::fs::read_dir(study.join("label_issues"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "npy"))
        .count();
    assert_eq!(npy, 0);
}

/// Two sources: one exact, one that draws every object 2 px too large on every image.
const SHARED_BIAS: &str = r#"
name = "bias"
seed = 5

[world]
size = 32
classes = ["blob", "box"]
min_objects = 2
max_objects = 4

[[sources]]
name = "careful"
kind = "exact"
images = 24

[[sources]]
name = "wide"
kind = "manual"
images = 24
dilate = 2

[split]
validation = 0.25
test = 8
pool = 0

[nets]
architectures = ["fcn"]
fcn = { width = 8, depth = 4 }

[train]
steps = 300
batch_size = 8

[study]
generations = 0
strategies = ["self"]
ceiling = false

[label_issues]
folds = 2
leave_source_out = true
"#;

#[test]
fn a_bias_a_source_draws_on_every_image_is_seen_by_networks_trained_without_that_source() {
    let scratch = Scratch::new("label-issues-sources");
    let path = scratch.write("bias.toml", SHARED_BIAS);
    let reports = scratch.path().join("reports");
    let page = run_quietly(&path, &reports).unwrap();
    let study = reports.join("bias");

    let rows = csv(&study.join("label_issues.csv"));
    for source in ["careful", "wide"] {
        let mine = rows.iter().filter(|r| r["scorer"] == "other-sources" && r["source"] == source).count();
        assert_eq!(mine, 24, "every labelled image of {source} is scored by the other sources' networks");
    }
    let runs: Vec<String> = std::fs::read_dir(study.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("crossfit-"))
        .collect();
    assert_eq!(runs.len(), 4, "two folds and two sources: {runs:?}");

    // Known answer. The fold networks learn from both sources, half of whose masks are 2 px too
    // large, so they share much of the rim and flag little of it; the network trained on the
    // exact source alone sees the whole rim as wrong.
    let quality = csv(&study.join("label_issue_quality.csv"));
    let number = |source: &str, scorer: &str, key: &str| -> f64 {
        quality.iter().find(|q| q["source"] == source && q["scorer"] == scorer).unwrap()[key].parse().unwrap()
    };
    let (folds, others) = (number("wide", "average", "flagged_recall"), number("wide", "other-sources", "flagged_recall"));
    assert!(number("wide", "average", "error_share") > 0.05, "a 2 px rim is a good share of the pixels");
    assert!(others > 0.5 && others > 2.0 * folds, "flagged recall of the rim: other sources {others}, folds {folds}");
    let precision = number("wide", "other-sources", "flagged_precision");
    assert!(precision > 0.8, "flagged pixels of the wide source are its rim: precision {precision}");
    // The price: the exact source is judged by a network that learned the wide rim, which takes
    // the exact outlines for errors. The folds' average flags less of it.
    let (folds, others) = (number("careful", "average", "flagged_share"), number("careful", "other-sources", "flagged_share"));
    assert!(others > folds, "the exact source flagged by the other sources' network {others}, by the folds' {folds}");

    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("The other-sources scorer is trained without"), "the report explains the scorer");
}
