//! BYOL pre-training end to end: a `+byol` model is the same architecture pre-trained on the
//! pool, judged against its twin without pre-training, and every fresh student of it starts
//! from the one pre-training of its repeat.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::path::Path;

use echoseg_study::RunOutcome;
use echoseg_study::plan::data::StudyData;
use echoseg_tests::{Scratch, TINY_MANIFEST, run_quietly};

fn manifest() -> String {
    TINY_MANIFEST
        .replace("architectures = [\"unet\", \"fcn\"]", "architectures = [\"fcn\", \"fcn+byol\"]\nbyol = { epochs = 3, batch_size = 8 }")
        .replace("strategies = [\"self\", \"cross\"]", "strategies = [\"self\", \"ema\"]")
        .replace("epochs = 12", "epochs = 4")
}

/// The value of `metric` for `model` at `generation` in results.csv, one per repeat.
fn values(results: &str, model: &str, generation: &str, metric: &str) -> Vec<f64> {
    let mut lines = results.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| {
            r[col("subject")] == "model" && r[col("model")] == model && r[col("generation")] == generation && r[col("metric")] == metric
        })
        .map(|r| r[col("value")].parse().unwrap())
        .collect()
}

#[test]
fn a_pretrained_model_is_compared_with_its_twin_and_its_students_reuse_the_pretraining() {
    let scratch = Scratch::new("pretrain");
    let path = scratch.write("tiny.toml", &manifest());
    let reports = scratch.path().join("reports");
    let page = run_quietly(&path, &reports).unwrap();
    let study = reports.join("tiny");

    // The twins share seeds; only the pre-trained one records BYOL, whose loss fell and whose
    // embeddings did not collapse.
    let results = std::fs::read_to_string(study.join("results.csv")).unwrap();
    let (first, last) = (values(&results, "fcn+byol", "0", "byol_loss_first"), values(&results, "fcn+byol", "0", "byol_loss_last"));
    assert_eq!(first.len(), 1);
    assert!(last[0] < first[0], "BYOL loss {first:?} → {last:?}");
    assert!(values(&results, "fcn+byol", "0", "byol_embedding_std_last")[0] > 0.01);
    assert!(values(&results, "fcn", "0", "byol_loss_first").is_empty());

    // One pre-training, reused by the fresh self-trained student; ema goes on from its teacher.
    let runs: Vec<String> =
        std::fs::read_dir(study.join("runs")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(runs.iter().filter(|r| r.starts_with("pretrain-fcn+byol-r0-")).count(), 1, "{runs:?}");
    let outcome = |prefix: &str| {
        let run = runs.iter().find(|r| r.starts_with(prefix)).unwrap_or_else(|| panic!("no run {prefix} in {runs:?}"));
        echoseg_study::store::read_json::<RunOutcome>(&study.join("runs").join(run).join("outcome.json")).unwrap()
    };
    let (g0, student, ema) = (outcome("g0-labels-fcn+byol-"), outcome("g1-self-fcn+byol-"), outcome("g1-ema-fcn+byol-"));
    assert!(g0.pretraining.is_some() && g0.pretraining == student.pretraining, "the student did not start from the pre-training");
    assert!(ema.pretraining.is_none(), "an ema run continues from its teacher, not from the pre-training");
    assert!(outcome("g0-labels-fcn-").pretraining.is_none());

    // The comparison: mIoU and each bias, with and without pre-training, at every generation.
    let table = std::fs::read_to_string(study.join("pretraining.csv")).unwrap();
    let rows: Vec<Vec<&str>> = table.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert!(table.starts_with("model,pretrained,generation,strategy,selection,metric,without,"), "{table}");
    for (generation, strategy) in [("0", "labels"), ("1", "self"), ("1", "ema")] {
        let miou: Vec<_> = rows.iter().filter(|r| r[2] == generation && r[3] == strategy && r[5] == "miou").collect();
        assert_eq!(miou.len(), 1, "{generation} {strategy}: {table}");
        assert_eq!((miou[0][0], miou[0][1]), ("fcn", "fcn+byol"));
        // The change is the paired difference of the two models' values.
        let (without, with, change): (f64, f64, f64) =
            (miou[0][6].parse().unwrap(), miou[0][9].parse().unwrap(), miou[0][12].parse().unwrap());
        assert!((change - (with - without)).abs() < 1e-9, "{change} against {with} − {without}");
        let m = values(&results, "fcn+byol", generation, "miou");
        assert!((with - m.iter().sum::<f64>() / m.len() as f64).abs() < 0.02, "{with} against {m:?}");
    }
    // A fresh run (the default, without --resume) pre-trains again, and gets the same numbers.
    let pretrain_dir = study.join("runs").join(runs.iter().find(|r| r.starts_with("pretrain-")).unwrap());
    std::fs::write(pretrain_dir.join("marker"), "").unwrap();
    run_quietly(&path, &reports).unwrap();
    assert!(!pretrain_dir.join("marker").exists(), "a fresh run reused an earlier pre-training");
    assert_eq!(std::fs::read_to_string(study.join("pretraining.csv")).unwrap(), table, "a fresh run differs");

    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("id=\"pretraining\"") && html.contains("fcn+byol against fcn at generation 0: mIoU"), "no pre-training section");
    assert!(html.contains("BYOL&#39;s loss fell from") || html.contains("BYOL's loss fell from"), "no BYOL record in the report");
}

#[test]
fn plain_run_ids_do_not_change_when_a_pretrained_twin_joins() {
    let load = |text: &str| {
        let m = echoseg_study::plan::manifest::parse(Path::new("t.toml"), text).unwrap();
        echoseg_study::plan(&m, &StudyData::load(&m).unwrap())
    };
    let with = load(&manifest());
    let without = load(&manifest().replace("[\"fcn\", \"fcn+byol\"]", "[\"fcn\"]"));
    let ids = |p: &echoseg_study::Plan, model: &str| p.runs.iter().filter(|r| r.model == model).map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&with, "fcn"), ids(&without, "fcn"));
    assert!(ids(&with, "fcn+byol").iter().all(|id| id.contains("fcn+byol")));
}

#[test]
fn model_names_and_byol_settings_are_validated() {
    let bad = |from: &str, to: &str| {
        echoseg_study::plan::manifest::parse(Path::new("t.toml"), &manifest().replace(from, to)).unwrap_err().to_string()
    };
    let unknown = bad("\"fcn+byol\"]", "\"fcn+simclr\"]");
    assert!(unknown.contains("`nets.architectures` \"fcn+simclr\" is not a model") && unknown.contains("+byol"), "{unknown}");
    assert!(bad("\"fcn+byol\"]", "\"fcn\"]").contains("lists \"fcn\" twice"));
    assert!(bad("epochs = 3, batch_size = 8", "decay = 1.0").contains("`nets.byol.decay` must lie in [0, 1), got 1"));
    assert!(bad("pool = 16", "pool = 0").contains("`split.pool` must be at least 1: BYOL pre-trains on the unlabelled pool"));
    // Without a pre-trained model the BYOL settings are not needed, so not judged.
    let plain = manifest().replace("[\"fcn\", \"fcn+byol\"]", "[\"fcn\"]").replace("epochs = 3, batch_size = 8", "decay = 1.0");
    assert!(echoseg_study::plan::manifest::parse(Path::new("t.toml"), &plain).is_ok());
}
