//! `echoseg export`: a configuration's committee mask for every image of the study, the same
//! masks the study scored on its test images.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use echoseg_study::analysis::committee::committee_mask;
use echoseg_study::store::read_labels;
use echoseg_tests::{Scratch, TINY_MANIFEST, run_quietly};

#[test]
fn export_writes_every_images_committee_mask_and_they_are_the_masks_the_study_scored() {
    let scratch = Scratch::new("export");
    let path = scratch.write("tiny.toml", TINY_MANIFEST);
    let reports = scratch.path().join("reports");
    let page = run_quietly(&path, &reports).unwrap();
    let study = reports.join("tiny");
    let out = scratch.path().join("exported");
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = ["echoseg", "export", "tiny", "--quiet", "--reports"].iter().map(|s| s.to_string()).collect();
        a.push(reports.to_string_lossy().into_owned());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    echoseg::run_cli(args(&["--out", &out.to_string_lossy(), "--generation", "1", "--strategy", "cross"])).unwrap();

    // 64 labelled, 8 test and 16 pool images: every one has a mask, a confidence map and (generated) its image.
    let count = |sub: &str| std::fs::read_dir(out.join(sub)).unwrap().count();
    assert_eq!((count("masks/committee"), count("confidence"), count("images")), (88, 88, 88));
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("export.json")).unwrap()).unwrap();
    assert_eq!(summary["configuration"], "generation 1 cross");
    let runs: Vec<String> = summary["runs"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
    assert_eq!(runs.len(), 2, "unet and fcn, one seed");

    // The exported test masks are the plurality of the runs' own test predictions: what masks.csv scored.
    let splits: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(study.join("splits.json")).unwrap()).unwrap();
    let test: Vec<&str> = splits["test"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let stored: Vec<Vec<Vec<u8>>> =
        runs.iter().map(|r| read_labels(&study.join("runs").join(r).join("test.labels")).unwrap().maps).collect();
    for (i, name) in test.iter().enumerate() {
        let exported = image::open(out.join("masks/committee").join(format!("{name}.png"))).unwrap().to_luma8().into_raw();
        let expected = committee_mask(&[&stored[0][i], &stored[1][i]], 3);
        assert_eq!(exported, expected.mask, "{name}");
        let written = image::open(out.join("confidence").join(format!("{name}.png"))).unwrap().to_luma8().into_raw();
        assert_eq!(written, expected.confidence);
        assert!(written.iter().all(|&c| c == 128 || c == 255), "two runs vote 1:1 or 2:0");
    }

    // Without a configuration named, the one that agrees best with the validation labels, stated.
    let best = scratch.path().join("best");
    echoseg::run_cli(args(&["--out", &best.to_string_lossy()])).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(best.join("export.json")).unwrap()).unwrap();
    let scores: Vec<(String, f64)> = serde_json::from_value(summary["validation_miou"].clone()).unwrap();
    assert_eq!(scores.len(), 3, "generation 0, and self and cross at generation 1");
    let top = scores.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    assert_eq!(summary["configuration"].as_str().unwrap(), top.0);
    assert!(summary["chosen"].as_str().unwrap().contains("validation"));

    // A configuration the study does not have is refused, naming those it has.
    let err = echoseg::run_cli(args(&["--out", &best.to_string_lossy(), "--generation", "3", "--strategy", "self"])).unwrap_err();
    assert!(format!("{err:#}").contains("it has: generation 0 labels; generation 1 self; generation 1 cross"), "{err:#}");

    // The report compares the committee masks with each source on the test images.
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("id=\"masks\"") && html.contains("committee of generation 1 cross"), "no masks section");
    let masks = std::fs::read_to_string(study.join("masks.csv")).unwrap();
    assert!(masks.lines().any(|l| l.starts_with("manual,source,") && l.contains(",miou,")), "{masks}");
}
