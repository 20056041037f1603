//! Pseudo-label selection, the mix ratio and targets, end to end: each selection keeps what it
//! promises, the labels it keeps are more often right, and the report shows both.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::BTreeMap;
use std::path::Path;

use echoseg_study::Strategy;
use echoseg_study::plan::data::StudyData;
use echoseg_tests::{Scratch, TINY_MANIFEST, run_quietly};

/// The tiny study, self-training only, with every kind of selection and two targets whose
/// judgement cannot depend on training: mIoU is never below 0 and never above 1.
fn manifest() -> String {
    TINY_MANIFEST.replace("seed = 7", "seed = 7\ntargets = [\"miou >= 0\", \"miou > 1\"]").replace(
        "strategies = [\"self\", \"cross\"]",
        "strategies = [\"self\"]\n\
         selections = [\n\
           { kind = \"all\" },\n\
           { kind = \"confidence\", threshold = 0.8 },\n\
           { kind = \"hardness\", keep = 0.5 },\n\
           { kind = \"verifier\", min_area = 4, max_components = 3 },\n\
         ]",
    )
}

/// (selection, model) → metric → value, for the model rows of results.csv.
fn model_metrics(path: &Path) -> BTreeMap<(String, String), BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"));
    let mut out: BTreeMap<(String, String), BTreeMap<String, f64>> = BTreeMap::new();
    for line in lines {
        let row: Vec<&str> = line.split(',').collect();
        if row[col("subject")] == "model" && row[col("generation")] == "1" {
            out.entry((row[col("selection")].to_string(), row[col("model")].to_string()))
                .or_default()
                .insert(row[col("metric")].to_string(), row[col("value")].parse().unwrap());
        }
    }
    out
}

#[test]
fn every_selection_keeps_what_it_promises_and_keeps_the_more_accurate_labels() {
    let scratch = Scratch::new("selection");
    let path = scratch.write("tiny.toml", &manifest());
    let reports = scratch.path().join("reports");
    let page = run_quietly(&path, &reports).unwrap();
    let metrics = model_metrics(&reports.join("tiny/results.csv"));
    assert_eq!(metrics.len(), 8, "2 architectures × 4 selections at generation 1: {:?}", metrics.keys());

    for ((selection, model), m) in &metrics {
        let (kept, before, after) = (m["kept_fraction"], m["pseudo_accuracy_before"], m["pseudo_accuracy_after"]);
        // A single teacher labels every pool pixel, and pseudo-labels replace the originals.
        assert_eq!((m["offered_fraction"], m["pseudo_share"]), (1.0, 1.0), "{selection} {model}");
        match selection.as_str() {
            "all" => assert_eq!((kept, after), (1.0, before), "{model}"),
            "confidence0.8" => {
                assert!(kept < 1.0, "{model}: a threshold of 0.8 kept every pixel");
                assert!(after > before, "{model}: confident pixels are not more accurate: {before} → {after}");
            }
            "easiest0.5" => {
                // Half of each class, rounded up: at most 3 classes' worth of extra pixels.
                assert!((0.5..0.5 + 3.0 / (16.0 * 32.0 * 32.0) + 1e-9).contains(&kept), "{model}: kept {kept}");
                assert!(after > before, "{model}: the easiest pixels are not more accurate: {before} → {after}");
            }
            "verifier" => assert!(kept <= 1.0 && after >= before - 0.01, "{model}: {kept} {before} → {after}"),
            other => panic!("unexpected selection {other}"),
        }
    }

    // Targets: judged per configuration against its interval, in the report's second section.
    let targets = std::fs::read_to_string(reports.join("tiny/targets.csv")).unwrap();
    let judged: Vec<(&str, &str)> =
        targets.lines().skip(1).map(|l| (l.split(',').next().unwrap(), l.rsplit(',').next().unwrap())).collect();
    assert_eq!(judged.len(), 2 * 12, "two targets × 12 configurations (2 of them the ceiling)");
    assert!(judged.iter().all(|&(t, j)| (t == "miou >= 0" && j == "met") || (t == "miou > 1" && j == "missed")), "{judged:?}");

    let html = std::fs::read_to_string(&page).unwrap();
    let at = |id: &str| html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no {id} section"));
    assert!(at("verdict") < at("targets") && at("targets") < at("fingerprints"));
    assert!(html.contains("miou &gt;= 0: met by 10 of 10 configurations"), "no target sentence");
    let selection = &html[at("selection")..];
    assert!(selection.contains("self + confidence0.8") && selection.contains("self + easiest0.5"));
    let figure = selection.split("src=\"").nth(1).unwrap().split('"').next().unwrap();
    assert!(figure.starts_with("figures/selection-"), "{figure}");
    assert!(std::fs::metadata(reports.join("tiny").join(figure)).unwrap().len() > 10_000);
}

#[test]
fn a_mix_below_one_trains_on_originals_and_pseudo_labels_in_that_ratio() {
    let scratch = Scratch::new("mix");
    let text = TINY_MANIFEST
        .replace("strategies = [\"self\", \"cross\"]", "strategies = [\"self\"]\nmix = 0.25")
        .replace("architectures = [\"unet\", \"fcn\"]", "architectures = [\"fcn\"]")
        .replace("epochs = 12", "epochs = 3");
    let path = scratch.write("tiny.toml", &text);
    let reports = scratch.path().join("reports");
    run_quietly(&path, &reports).unwrap();
    let metrics = model_metrics(&reports.join("tiny/results.csv"));
    let m = &metrics[&("all".to_string(), "fcn".to_string())];
    assert!((m["pseudo_share"] - 0.25).abs() < 1e-6, "pseudo-labels carry {} of the loss", m["pseudo_share"]);
    let run = std::fs::read_dir(reports.join("tiny/runs")).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("g1-"));
    let outcome = std::fs::read_to_string(run.unwrap().path().join("outcome.json")).unwrap();
    // 2 sources × 32 images, a quarter held out for validation, plus the 16 pool images.
    assert!(outcome.contains("\"training_images\": 64"), "{outcome}");
}

#[test]
fn an_ema_student_is_judged_beside_self_training_and_ignores_selections() {
    let scratch = Scratch::new("ema");
    let text = TINY_MANIFEST
        .replace(
            "strategies = [\"self\", \"cross\"]",
            "strategies = [\"self\", \"ema\"]\nselections = [{ kind = \"all\" }, { kind = \"confidence\" }]\nema = { decay = 0.9, ramp_up = 1 }",
        )
        .replace("epochs = 12", "epochs = 4");
    let path = scratch.write("tiny.toml", &text);
    let reports = scratch.path().join("reports");
    let page = run_quietly(&path, &reports).unwrap();
    let m = echoseg_study::plan::manifest::load(&path).unwrap();
    let plan = echoseg_study::plan(&m, &StudyData::load(&m).unwrap());
    // 2 at generation 0, self × 2 selections, ema once (it has its own threshold), 2 ceilings: 10 runs.
    let ema: Vec<_> = plan.runs.iter().filter(|r| r.strategy() == Some(Strategy::Ema)).collect();
    assert_eq!((plan.runs.len(), ema.len()), (2 + 2 * 2 + 2 + 2, 2));
    assert!(ema.iter().all(|r| r.continues && r.treatment().keeps_every_label()), "an ema run goes on from its generation-0 weights");
    // Each ema run trained its epochs and is scored and judged like the other strategies.
    let metrics = model_metrics(&reports.join("tiny/results.csv"));
    for model in ["unet", "fcn"] {
        assert!(metrics.contains_key(&("all".to_string(), model.to_string())), "no generation-1 row for {model}");
    }
    let verdicts = std::fs::read_to_string(reports.join("tiny/verdicts.csv")).unwrap();
    assert!(verdicts.lines().filter(|l| l.starts_with("ema,all,")).count() >= 2, "{verdicts}");
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains(">ema<"), "the verdict table has no ema row");
    let changed = echoseg_study::plan::manifest::parse(Path::new("t.toml"), &text.replace("decay = 0.9", "decay = 1.5")).unwrap_err();
    assert!(changed.to_string().contains("`study.ema.decay` must lie in [0, 1), got 1.5"), "{changed}");
}
