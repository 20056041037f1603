//! The binary's own behaviour: exit codes and what it prints on bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::process::Command;

fn echoseg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_echoseg"))
}

fn scratch(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("echoseg-cli-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn unknown_key_fails_fast_naming_file_line_and_key() {
    let dir = scratch("unknown-key");
    let manifest = dir.join("typo.toml");
    std::fs::write(&manifest, "name = \"typo\"\n\n[train]\nepochs = 3\nlearning_rte = 0.1\n").unwrap();
    let out = echoseg().args(["run", manifest.to_str().unwrap(), "--reports", dir.join("reports").to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("error: {}:5:1: key `train.learning_rte`: unknown field `learning_rte`", manifest.display())),
        "{stderr}"
    );
    assert!(!dir.join("reports").exists(), "a bad manifest must not create the report directory");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_manifest_and_unknown_device_are_one_line_errors() {
    let out = echoseg().args(["run", "no/such/manifest.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: cannot read manifest no/such/manifest.toml: "), "{stderr}");

    let out = echoseg().args(["run", "experiments/default.toml", "--device", "tpu"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown device `tpu`; use `flex` (CPU) or `wgpu` (GPU)"));
}

#[cfg(not(feature = "wgpu"))]
#[test]
fn wgpu_without_the_feature_names_the_fix() {
    let out = echoseg().args(["run", "../../experiments/default.toml", "--device", "wgpu"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("built without GPU support") && stderr.contains("--features wgpu"), "{stderr}");
}

#[test]
fn validate_accepts_every_shipped_manifest() {
    // The folder examples read data that `echoseg generate` writes first, as their comments say.
    let dir = scratch("shipped");
    for (manifest, data, extra) in [("default.toml", "default-world", None), ("raters-world.toml", "raters-world", Some("--every-image"))] {
        let (manifest, out) = (format!("../../experiments/{manifest}"), dir.join("data").join(data));
        let mut args = vec!["generate", manifest.as_str(), "--out", out.to_str().unwrap()];
        args.extend(extra);
        let out = echoseg().args(&args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    for entry in std::fs::read_dir("../../experiments").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let copy = dir.join(path.file_name().unwrap());
            std::fs::copy(&path, &copy).unwrap();
            let out = echoseg().args(["validate", copy.to_str().unwrap()]).output().unwrap();
            assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("valid"));
            if path.ends_with("folder-raters.toml") {
                // Before any training: each mask set's coverage, then every pair's agreement.
                assert!(
                    stdout.contains("otsu                200 of 200 images") && stdout.contains("closed × otsu: 200 images"),
                    "{stdout}"
                );
            }
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bench_reports_throughput_and_memory_as_json() {
    let dir = scratch("bench");
    let out_file = dir.join("bench.json");
    let out = echoseg()
        .args(["bench", "--arch", "pixel", "--arch", "fcn", "--size", "16", "--batch", "2", "--steps", "2", "--json", "--out"])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(printed, written);
    let results = printed["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        for key in ["train_images_per_second", "infer_images_per_second", "infer_fused_images_per_second"] {
            assert!(r[key].as_f64().unwrap() > 0.0, "{key} in {r}");
        }
        if cfg!(target_os = "linux") {
            assert!(r["peak_rss_mib"].as_f64().unwrap() > 1.0);
        }
    }
    let out = echoseg().args(["bench", "--arch", "resnet"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown architecture `resnet`; use one of unet, fcn, dilated, bnonly, pixel"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A 20 × 20 mask with a square of class `class` spanning `lo..hi` in both directions.
fn square(dir: &std::path::Path, name: &str, lo: usize, hi: usize, class: u8) -> std::path::PathBuf {
    let mut labels = vec![0u8; 400];
    for y in lo..hi {
        for x in lo..hi {
            labels[y * 20 + x] = class;
        }
    }
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    echoseg_scene::png::write_label_map(&path, &echoseg_scene::LabelMap { width: 20, height: 20, labels }).unwrap();
    path
}

#[test]
fn agree_scores_masks_made_anywhere_and_staple_outvotes_the_odd_one() {
    let dir = scratch("agree");
    let truth = square(&dir, "truth.png", 5, 15, 1);
    let a = square(&dir, "a.png", 5, 15, 1);
    let b = square(&dir, "b.png", 5, 15, 1);
    let wide = square(&dir, "wide.png", 4, 16, 1); // dilated by 1 px: 44 extra pixels
    let arg = |p: &std::path::PathBuf| p.to_str().unwrap().to_string();
    let out = echoseg().args(["agree", &arg(&a), &arg(&b), &arg(&wide), "--truth", &arg(&truth), "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["classes"], 2);
    assert_eq!(json["analysis"]["agreement"][0][1], 1.0);
    assert_eq!(json["analysis"]["agreement"][0][2], 1.0 - 44.0 / 400.0);
    assert_eq!(json["analysis"]["truth"]["accuracy"][2], 1.0 - 44.0 / 400.0);
    // Two exact raters outvote the wide one: the consensus is the truth, and STAPLE sees the wide
    // rater's background sensitivity as 256 / 300.
    assert_eq!(json["staple_consensus_vs_truth"]["miou"], 1.0);
    let sensitivity = json["staple"]["sensitivity"][2][0].as_f64().unwrap();
    assert!((sensitivity - 256.0 / 300.0).abs() < 1e-3, "{sensitivity}");
    // Surface metrics of class 1 against truth: the exact raters are perfect; the wide one's 44
    // border pixels lie 1 px from the truth's (its 4 corners √2), the truth's 36 lie 1 px from it.
    assert_eq!((json["surface"][0][0]["hd95"].as_f64(), json["surface"][0][0]["surface_dice"].as_f64()), (Some(0.0), Some(1.0)));
    let wide_surface = &json["surface"][2][0];
    let assd = (76.0 + 4.0 * 2f64.sqrt()) / 80.0;
    assert!((wide_surface["assd"].as_f64().unwrap() - assd).abs() < 1e-9, "{wide_surface}");
    assert!((wide_surface["hd95"].as_f64().unwrap() - (1.0 + 0.05 * (2f64.sqrt() - 1.0))).abs() < 1e-9, "{wide_surface}");
    assert!((wide_surface["surface_dice"].as_f64().unwrap() - 76.0 / 80.0).abs() < 1e-12, "{wide_surface}");

    // Directories: matched by file name; an unmatched name, another size or a value outside the
    // classes is an error naming the file.
    square(&dir, "r1/x.png", 5, 15, 1);
    square(&dir, "r2/x.png", 4, 16, 1);
    square(&dir, "r2/y.png", 4, 16, 1);
    let out = echoseg().args(["agree", "--dirs", &arg(&dir.join("r1")), &arg(&dir.join("r2"))]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("r2/y.png has no counterpart in"), "{stderr}");

    let small = dir.join("small.png");
    echoseg_scene::png::write_label_map(&small, &echoseg_scene::LabelMap { width: 10, height: 20, labels: vec![0; 200] }).unwrap();
    let out = echoseg().args(["agree", &arg(&a), &arg(&small)]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("small.png is 10×20 px but") && stderr.contains("a.png is 20×20"), "{stderr}");

    let three = square(&dir, "three.png", 5, 15, 3);
    let out = echoseg().args(["agree", &arg(&a), &arg(&three), "--classes", "2"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("three.png: value 3 is not a class"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}
