//! Folder datasets end to end: `echoseg generate` writes one, it reads back identical, a study
//! runs on it, and broken files are named before any training.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use echoseg_scene::{FolderSpec, read_folder};
use echoseg_study::data::StudyData;
use echoseg_study::manifest;
use echoseg_tests::{Scratch, TINY_MANIFEST, run_quietly};

fn generate(scratch: &Scratch) -> (std::path::PathBuf, StudyData) {
    let manifest_path = scratch.write("tiny.toml", TINY_MANIFEST);
    let out = scratch.path().join("data");
    echoseg::run_cli(["echoseg", "generate", manifest_path.to_str().unwrap(), "--out", out.to_str().unwrap()]).unwrap();
    let m = manifest::load(&manifest_path).unwrap();
    (out, StudyData::load(&m).unwrap())
}

const FOLDER_MANIFEST: &str = r#"
name = "tiny-folder"
seed = 7
[folder]
path = "data"
classes = ["background", "blob", "thin"]
truth = "truth"
[[sources]]
kind = "folder"
masks = "manual"
[[sources]]
kind = "folder"
masks = "heuristic"
[split]
validation = 0.25
test = 8
pool = 16
[nets]
architectures = ["unet", "fcn"]
unet = { width = 8, depth = 2 }
fcn = { width = 8, depth = 4 }
[train]
epochs = 4
batch_size = 8
[study]
generations = 1
strategies = ["self"]
"#;

#[test]
fn generated_folder_reads_back_identical() {
    let scratch = Scratch::new("folder-roundtrip");
    let (out, data) = generate(&scratch);
    let spec = FolderSpec {
        root: out,
        classes: data.classes.clone(),
        colours: None,
        truth: Some("truth".into()),
        required_sets: vec!["manual".into(), "heuristic".into()],
    };
    let folder = read_folder(&spec).unwrap();
    let all = data.train.len() + data.validation.len() + data.test.len() + data.pool.len();
    assert_eq!(folder.scenes.len(), all);
    for l in data.train.iter().chain(&data.validation) {
        let read = folder.scenes.iter().find(|s| s.name == l.scene.name).unwrap();
        assert_eq!(read.image, l.scene.image, "{}", l.scene.name);
        assert_eq!(read.truth.as_ref().unwrap().labels, l.scene.truth.as_ref().unwrap().labels);
        let set = if l.source == 0 { "manual" } else { "heuristic" };
        assert_eq!(folder.mask_sets[set].masks[&l.scene.name], l.labels, "{set}/{}", l.scene.name);
    }
    assert_eq!(
        folder.mask_sets["manual"].masks.len() + folder.mask_sets["heuristic"].masks.len(),
        data.train.len() + data.validation.len()
    );
}

#[test]
fn a_study_runs_on_a_generated_folder_and_measures_the_same_source_bias() {
    let scratch = Scratch::new("folder-study");
    generate(&scratch);
    let path = scratch.write("folder.toml", FOLDER_MANIFEST);
    let reports = scratch.path().join("reports");
    let page = run_quietly(&path, &reports).unwrap();
    assert!(page.exists());
    let csv = std::fs::read_to_string(reports.join("tiny-folder/results.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let manual_offset: f64 = rows
        .iter()
        .find(|r| r[col("subject")] == "source" && r[col("model")] == "manual" && r[col("metric")] == "boundary_offset")
        .map(|r| r[col("value")].parse().unwrap())
        .unwrap();
    assert!((manual_offset - 1.0).abs() < 0.25, "the manual masks read from disk measure {manual_offset:+.3} px");
    assert!(rows.iter().any(|r| r[col("subject")] == "model" && r[col("generation")] == "1" && r[col("model")] == "unet"));
}

#[test]
fn without_truth_the_report_leaves_out_truth_sections_and_leads_with_agreement() {
    let scratch = Scratch::new("folder-no-truth");
    generate(&scratch);
    let path = scratch.write("folder.toml", &FOLDER_MANIFEST.replace("truth = \"truth\"\n", "").replace("epochs = 4", "epochs = 2"));
    let reports = scratch.path().join("reports");
    let html = std::fs::read_to_string(run_quietly(&path, &reports).unwrap()).unwrap();
    assert!(html.contains("have no ground truth"), "the report does not say the truth is missing");
    for absent in ["id=\"verdict\"", "id=\"targets\"", "id=\"fingerprints\"", "id=\"calibration\""] {
        assert!(!html.contains(absent), "{absent} needs truth but is in the report");
    }
    // No vacuous scores: without truth a model has no mIoU at all (not a perfect one).
    let csv = std::fs::read_to_string(reports.join("tiny-folder/results.csv")).unwrap();
    assert!(!csv.lines().any(|l| l.starts_with("model,") && l.contains(",miou,")), "a model was scored without truth");
    let estimates = html.find("id=\"estimates\"").expect("no estimates section");
    assert!(estimates < html.find("id=\"agreement\"").unwrap(), "estimates must lead");
    // Two architectures at two generations, each with a disagreement and a STAPLE sensitivity per class.
    let table = &html[estimates..html.find("id=\"agreement\"").unwrap()];
    assert_eq!(table.matches("<tr>").count(), 1 + 4, "{table}");
    assert!(table.contains("STAPLE sensitivity blob") && table.contains("STAPLE sensitivity thin"));
}

#[test]
fn broken_folder_data_is_named_before_training() {
    let scratch = Scratch::new("folder-broken");
    let (out, data) = generate(&scratch);
    let victim = &data.train[0].scene.name;
    std::fs::write(out.join(format!("masks/manual/{victim}.png")), b"\x89PNG\r\n\x1a\ntruncated").unwrap();
    let path = scratch.write("folder.toml", FOLDER_MANIFEST);
    let err = echoseg::run_cli(["echoseg", "validate", path.to_str().unwrap()]).unwrap_err();
    let text = echoseg::describe_error(&err);
    assert!(text.contains(&format!("masks/manual/{victim}.png: unreadable or truncated mask")), "{text}");
    // `run` refuses the same data before creating anything.
    let reports = scratch.path().join("reports");
    assert!(run_quietly(&path, &reports).is_err());
    assert!(!reports.exists(), "nothing is written for bad data");
}
