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
    // The folder example reads data that `echoseg generate` writes first, as its comment says.
    let dir = scratch("shipped");
    let out = echoseg()
        .args(["generate", "../../experiments/default.toml", "--out", dir.join("data/default-world").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for entry in std::fs::read_dir("../../experiments").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let copy = dir.join(path.file_name().unwrap());
            std::fs::copy(&path, &copy).unwrap();
            let out = echoseg().args(["validate", copy.to_str().unwrap()]).output().unwrap();
            assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
            assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}
