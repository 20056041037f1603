//! Folder datasets end to end: `echoseg generate` writes one, it reads back identical, a study
//! runs on it, and broken files are named before any training.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use echoseg_scene::{FolderSpec, read_folder};
use echoseg_study::plan::Teaching;
use echoseg_study::plan::data::StudyData;
use echoseg_study::plan::manifest;
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
fn a_folder_whose_truth_covers_the_training_images_gets_a_ceiling_and_one_missing_truth_mask_takes_it_away() {
    let scratch = Scratch::new("folder-ceiling");
    let (out, _) = generate(&scratch);
    let path = scratch.write("folder.toml", FOLDER_MANIFEST);
    let ceilings = || {
        let m = manifest::load(&path).unwrap();
        let data = StudyData::load(&m).unwrap();
        let plan = echoseg_study::plan(&m, &data);
        let models: Vec<String> = plan.runs.iter().filter(|r| r.teaching == Teaching::Truth).map(|r| r.model.clone()).collect();
        (models, data)
    };
    let (models, data) = ceilings();
    assert_eq!(models, ["unet", "fcn"], "masks/truth covers every image, so each architecture gets its exact-label ceiling");
    // Without the truth of one image a source teaches, exact labels of generation 0's images do not exist.
    let taught = &data.train[0].scene.name;
    std::fs::remove_file(out.join("masks/truth").join(format!("{taught}.png"))).unwrap();
    let (models, data) = ceilings();
    assert!(data.train.iter().any(|l| &l.scene.name == taught), "{taught} still teaches");
    assert!(models.is_empty(), "a ceiling was planned although {taught} has no truth: {models:?}");
}

#[test]
fn predict_segments_image_files_as_the_study_segmented_its_test_images() {
    let scratch = Scratch::new("folder-predict");
    let (out, _) = generate(&scratch);
    let path = scratch.write("folder.toml", &FOLDER_MANIFEST.replace("epochs = 4", "epochs = 2"));
    let reports = scratch.path().join("reports");
    run_quietly(&path, &reports).unwrap();
    let runs = reports.join("tiny-folder/runs");
    let run =
        std::fs::read_dir(&runs).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains("g0-labels-unet")).unwrap();
    let test = splits(&reports)["test"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect::<Vec<_>>();
    let files: Vec<String> = test.iter().map(|id| out.join("images").join(format!("{id}.png")).to_string_lossy().into_owned()).collect();
    let predicted = scratch.path().join("predicted");
    let mut args = vec!["echoseg".to_string(), "predict".into(), "--quiet".into(), "--model".into(), run.to_string_lossy().into_owned()];
    args.extend(files);
    args.extend(["--out".into(), predicted.to_string_lossy().into_owned()]);
    echoseg::run_cli(&args).unwrap();
    // The study read these PNG files too, so the masks must be the run's own test predictions, pixel for pixel.
    let stored = echoseg_study::store::read_labels(&run.join("test.labels")).unwrap();
    for (id, expected) in test.iter().zip(&stored.maps) {
        let mask = echoseg_scene::png::read_label_map(&predicted.join(format!("{id}.png"))).unwrap();
        assert_eq!(&mask.labels, expected, "{id}");
        let confidence = echoseg_scene::png::read_label_map(&predicted.join("confidence").join(format!("{id}.png"))).unwrap();
        assert!(confidence.labels.iter().all(|&c| c >= 255 / 3), "a top-class probability is at least 1/3 of three classes");
    }
    // Pointing at the study instead of one of its runs is named as such.
    let err =
        echoseg::run_cli(["echoseg", "predict", "--model", runs.to_str().unwrap(), "--out", "x", out.join("images").to_str().unwrap()])
            .unwrap_err();
    assert!(echoseg::describe_error(&err).contains("is not a finished run of a study"), "{err:#}");

    // Export reads the folder again through the manifest the study ran (its relative path) and
    // writes a committee mask per image of every split, the images themselves staying where they are.
    let exported = scratch.path().join("exported");
    let reports_arg = reports.to_string_lossy().into_owned();
    echoseg::run_cli(["echoseg", "export", "tiny-folder", "--quiet", "--reports", &reports_arg, "--out", exported.to_str().unwrap()])
        .unwrap();
    let s = splits(&reports);
    let listed = |key: &str| -> usize {
        match &s[key] {
            serde_json::Value::Array(ids) => ids.len(),
            serde_json::Value::Object(per_source) => per_source.values().map(|ids| ids.as_array().map_or(0, Vec::len)).sum(),
            _ => 0,
        }
    };
    let images = listed("train") + listed("validation") + listed("test") + listed("pool");
    assert_eq!(std::fs::read_dir(exported.join("masks/committee")).unwrap().count(), images);
    assert!(!exported.join("images").exists(), "a folder study's images are not copied");
}

#[test]
fn without_truth_the_report_leaves_out_truth_sections_and_leads_with_agreement() {
    let scratch = Scratch::new("folder-no-truth");
    generate(&scratch);
    let manifest = FOLDER_MANIFEST.replace("truth = \"truth\"\n", "").replace("epochs = 4", "epochs = 2") + "[label_issues]\n";
    let path = scratch.write("folder.toml", &manifest);
    let reports = scratch.path().join("reports");
    let html = std::fs::read_to_string(run_quietly(&path, &reports).unwrap()).unwrap();
    assert!(html.contains("have no ground truth"), "the report does not say the truth is missing");
    // Label issues need no truth: every labelled image is ranked, with no error share to check against.
    let issues = std::fs::read_to_string(reports.join("tiny-folder/label_issues.csv")).unwrap();
    let header: Vec<&str> = issues.lines().next().unwrap().split(',').collect();
    let error = header.iter().position(|h| *h == "error_share").unwrap();
    let rows: Vec<Vec<&str>> = issues.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert!(!rows.is_empty() && rows.iter().all(|r| r[error].is_empty()), "an error share without truth");
    assert!(html.contains("id=\"label-issues\""), "no label-issue section");
    for absent in ["id=\"verdict\"", "id=\"targets\"", "id=\"fingerprints\"", "id=\"calibration\"", "id=\"masks\"", "id=\"surfaces\""] {
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

/// Writes the tiny world with every source's masks on every image (the multi-rater layout).
fn generate_every_image(scratch: &Scratch) -> std::path::PathBuf {
    let manifest_path = scratch.write("tiny.toml", TINY_MANIFEST);
    let out = scratch.path().join("data");
    echoseg::run_cli(["echoseg", "generate", manifest_path.to_str().unwrap(), "--out", out.to_str().unwrap(), "--every-image"]).unwrap();
    out
}

fn folder_spec(root: std::path::PathBuf) -> FolderSpec {
    FolderSpec {
        root,
        classes: echoseg_scene::ClassTable::new(vec!["background".into(), "blob".into(), "thin".into()]),
        colours: None,
        truth: Some("truth".into()),
        required_sets: vec![],
    }
}

fn splits(reports: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(reports.join("tiny-folder/splits.json")).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> std::collections::BTreeSet<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// The value of `metric` in the results row of `subject` `model` (generation 0, repeat 0).
fn result(reports: &std::path::Path, subject: &str, model: &str, metric: &str) -> Option<f64> {
    let csv = std::fs::read_to_string(reports.join("tiny-folder/results.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    csv.lines().skip(1).map(|l| l.split(',').collect::<Vec<_>>()).find_map(|r| {
        (r[col("subject")] == subject && r[col("model")] == model && r[col("metric")] == metric && r[col("generation")] == "0")
            .then(|| r[col("value")].parse().unwrap())
    })
}

#[test]
fn every_mask_set_over_every_image_is_split_by_the_study_and_each_source_is_scored_on_test_images() {
    let scratch = Scratch::new("folder-every-image");
    let data = generate_every_image(&scratch);
    let folder = read_folder(&folder_spec(data)).unwrap();
    assert!(folder.mask_sets["manual"].masks.len() == folder.scenes.len(), "the layout: every source masks every image");
    let path = scratch.write("folder.toml", &FOLDER_MANIFEST.replace("test = 8\npool = 16", "test = 0.2\npool = 0.25"));
    let reports = scratch.path().join("reports");
    let html = std::fs::read_to_string(run_quietly(&path, &reports).unwrap()).unwrap();
    let s = splits(&reports);
    let (test, pool) = (ids(&s["test"]), ids(&s["pool"]));
    let (manual, heuristic) = (ids(&s["train"]["manual"]), ids(&s["train"]["heuristic"]));
    let validation = ids(&s["validation"]["manual"]);
    let n = folder.scenes.len();
    assert_eq!(test.len(), (0.2 * n as f64).round() as usize);
    assert_eq!(pool.len(), (0.25 * n as f64).round() as usize);
    assert_eq!(manual, heuristic, "overlap = all: both sources teach every training image");
    assert_eq!(test.len() + pool.len() + manual.len() + validation.len(), n, "every image in exactly one split");
    assert!(manual.is_disjoint(&test) && validation.is_disjoint(&manual) && pool.is_disjoint(&manual));
    // The manual source's quality is its masks on the test images against their truth.
    let mut confusion = echoseg_agree::Confusion::new(3);
    for id in &test {
        confusion.add_maps(&folder.mask_sets["truth"].masks[id].labels, &folder.mask_sets["manual"].masks[id].labels);
    }
    let reported = result(&reports, "source", "manual", "miou").unwrap();
    assert!((reported - confusion.miou()).abs() < 1e-9, "source row {reported} vs its test masks {}", confusion.miou());
    assert!(html.contains("overlap = &quot;all&quot;"), "the report says how sources share images");
}

#[test]
fn assign_gives_each_training_image_one_source() {
    let scratch = Scratch::new("folder-assign");
    generate_every_image(&scratch);
    let manifest = FOLDER_MANIFEST.replace("truth = \"truth\"\n", "truth = \"truth\"\noverlap = \"assign\"\n");
    let path = scratch.write("folder.toml", &manifest);
    let reports = scratch.path().join("reports");
    let html = std::fs::read_to_string(run_quietly(&path, &reports).unwrap()).unwrap();
    let s = splits(&reports);
    let (manual, heuristic) = (ids(&s["train"]["manual"]), ids(&s["train"]["heuristic"]));
    assert!(manual.is_disjoint(&heuristic), "one teacher per image");
    assert!(
        manual.len() >= 10 && heuristic.len() >= 10,
        "equal shares split 56 images roughly evenly: {} and {}",
        manual.len(),
        heuristic.len()
    );
    assert!(html.contains("overlap = &quot;assign&quot;"));
    // A share is only meaningful when the study draws.
    let shared = manifest.replace("masks = \"manual\"\n", "masks = \"manual\"\nshare = 3\n");
    let err = echoseg::run_cli([
        "echoseg",
        "validate",
        scratch.write("shared.toml", &shared.replace("overlap = \"assign\"\n", "")).to_str().unwrap(),
    ])
    .unwrap_err();
    assert!(echoseg::describe_error(&err).contains("`sources[0].share` weighs manual when folder.overlap = \"assign\""), "{err:#}");
}

#[test]
fn truth_for_half_the_images_puts_the_test_split_there() {
    let scratch = Scratch::new("folder-half-truth");
    let data = generate_every_image(&scratch);
    let mut names: Vec<_> = std::fs::read_dir(data.join("masks/truth")).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for p in names.iter().skip(names.len() / 2) {
        std::fs::remove_file(p).unwrap();
    }
    let with_truth: std::collections::BTreeSet<String> =
        names.iter().take(names.len() / 2).map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    let path = scratch.write("folder.toml", FOLDER_MANIFEST);
    let reports = scratch.path().join("reports");
    run_quietly(&path, &reports).unwrap();
    let test = ids(&splits(&reports)["test"]);
    assert_eq!(test.len(), 8);
    assert!(test.is_subset(&with_truth), "test images are drawn from those with truth");
    assert!(result(&reports, "model", "unet", "miou").is_some(), "models are scored on them");
}

#[test]
fn sixteen_bit_grey_images_split_and_train_like_their_eight_bit_originals() {
    let scratch = Scratch::new("folder-16bit");
    let data = generate_every_image(&scratch);
    let before = read_folder(&folder_spec(data.clone())).unwrap();
    let path = scratch.write("folder.toml", FOLDER_MANIFEST);
    let study = |depth: image::ExtendedColorType, label: &str| {
        for s in &before.scenes {
            let grey = s.image.grey();
            let bytes: Vec<u8> = match depth {
                image::ExtendedColorType::L16 => grey.iter().flat_map(|&g| ((g * 65535.0).round() as u16).to_ne_bytes()).collect(),
                _ => grey.iter().map(|&g| (g * 255.0).round() as u8).collect(),
            };
            let file = data.join(format!("images/{}.png", s.name));
            image::save_buffer(&file, &bytes, s.image.width as u32, s.image.height as u32, depth).unwrap();
        }
        let reports = scratch.path().join(label);
        run_quietly(&path, &reports).unwrap();
        (read_folder(&folder_spec(data.clone())).unwrap(), splits(&reports), result(&reports, "model", "fcn", "miou").unwrap())
    };
    let (eight, eight_splits, eight_miou) = study(image::ExtendedColorType::L8, "eight");
    let (sixteen, sixteen_splits, sixteen_miou) = study(image::ExtendedColorType::L16, "sixteen");
    let brightest = before.scenes.iter().flat_map(|s| s.image.grey()).fold(0.0f32, f32::max);
    for (a, b) in sixteen.scenes.iter().zip(&before.scenes) {
        let (ga, gb) = (a.image.grey(), b.image.grey());
        assert!(
            ga.iter().zip(&gb).all(|(x, y)| (x - y / brightest).abs() < 1e-4),
            "{}: 16-bit grey reads as the grey image, stretched",
            a.name
        );
    }
    assert_eq!(eight.scenes.len(), sixteen.scenes.len());
    assert_eq!(eight_splits, sixteen_splits, "the split does not depend on the pixels");
    assert!((eight_miou - sixteen_miou).abs() < 0.05, "8-bit grey fcn mIoU {eight_miou:.3}, 16-bit {sixteen_miou:.3}");
}

/// The size image `i` (in name order) is cut to: 40 to 100 px on each side, the first 40 × 40.
fn mixed_size(i: usize) -> (u32, u32) {
    (40 + (i * 37 % 61) as u32, 40 + (i * 53 % 61) as u32)
}

#[test]
fn images_of_mixed_sizes_train_on_crops_and_are_segmented_and_scored_at_full_size() {
    let scratch = Scratch::new("folder-mixed");
    let manifest_path = scratch.write("tiny.toml", &TINY_MANIFEST.replace("size = 32", "size = 100"));
    let data = scratch.path().join("data");
    echoseg::run_cli(["echoseg", "generate", manifest_path.to_str().unwrap(), "--out", data.to_str().unwrap(), "--every-image"]).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(data.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for (i, name) in names.iter().enumerate() {
        let (w, h) = mixed_size(i);
        for file in [data.join(format!("images/{name}.png"))]
            .into_iter()
            .chain(["truth", "manual", "heuristic"].map(|set| data.join(format!("masks/{set}/{name}.png"))))
        {
            image::open(&file).unwrap().crop_imm(0, 0, w, h).save(&file).unwrap();
        }
    }
    let folder = read_folder(&folder_spec(data)).unwrap();
    let size_of: std::collections::BTreeMap<&str, (usize, usize)> =
        folder.scenes.iter().map(|s| (s.name.as_str(), (s.image.width, s.image.height))).collect();
    assert_eq!(size_of.values().min(), Some(&(40, 40)));
    // 100-px images are segmented in 48-px tiles, so tiling is part of the run.
    // Objects are sparse in 40-px crops of a 100-px world: a step budget, and the U-Net only
    // (its pooling sees whole objects at this size; the 9-px fcn needs far longer).
    let manifest = FOLDER_MANIFEST
        .replace("architectures = [\"unet\", \"fcn\"]", "architectures = [\"unet\"]\ninference_tile = 48")
        .replace("epochs = 4", "steps = 60");
    let path = scratch.write("folder.toml", &manifest);
    let reports = scratch.path().join("reports");
    let html = std::fs::read_to_string(run_quietly(&path, &reports).unwrap()).unwrap();
    assert!(html.contains("src=\"figures/samples-"), "sample panels are drawn for images of several sizes");

    // Every run's test predictions are stored at each test image's own size.
    let test: Vec<String> = splits(&reports)["test"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let expected: Vec<(usize, usize)> = test.iter().map(|n| size_of[n.as_str()]).collect();
    assert!(expected.iter().any(|s| s.0 > 48 || s.1 > 48), "some test image is tiled: {expected:?}");
    let runs = reports.join("tiny-folder/runs");
    let mut checked = 0;
    for run in std::fs::read_dir(&runs).unwrap().map(|e| e.unwrap().path()) {
        let Ok(stored) = echoseg_study::store::read_labels(&run.join("test.labels")) else { continue };
        assert_eq!(stored.sizes, expected, "{}", run.display());
        checked += 1;
    }
    assert!(checked >= 2, "gen 0 and gen 1: {checked}");

    // Scores are at full size: the manual source's row is its whole masks on the test images.
    let mut confusion = echoseg_agree::Confusion::new(3);
    for id in &test {
        confusion.add_maps(&folder.mask_sets["truth"].masks[id].labels, &folder.mask_sets["manual"].masks[id].labels);
    }
    let reported = result(&reports, "source", "manual", "miou").unwrap();
    assert!((reported - confusion.miou()).abs() < 1e-9, "source row {reported} vs its test masks {}", confusion.miou());
    // A network trained on 40-px crops segments the whole images far better than all-background does.
    let mut background = echoseg_agree::Confusion::new(3);
    for id in &test {
        let truth = &folder.mask_sets["truth"].masks[id].labels;
        background.add_maps(truth, &vec![0; truth.len()]);
    }
    let unet = result(&reports, "model", "unet", "miou").unwrap();
    eprintln!("mixed sizes: unet {unet:.3}, all-background {:.3}, manual {reported:.3}", background.miou());
    assert!(unet > background.miou() + 0.15, "unet mIoU {unet:.3} against all-background {:.3}", background.miou());

    // A crop larger than the smallest image is refused before training, naming that image.
    let too_large = scratch.write("crop.toml", &manifest.replace("[train]\n", "[train]\ncrop = 64\n"));
    let err = echoseg::describe_error(&echoseg::run_cli(["echoseg", "validate", too_large.to_str().unwrap()]).unwrap_err());
    assert!(err.contains("train.crop = 64 is larger than image `") && err.contains("40×40 px") && err.contains("at most 40"), "{err}");
}
