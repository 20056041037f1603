//! Helpers shared by the end-to-end tests in `tests/tests/`.

use std::path::{Path, PathBuf};

/// A directory under the system temp dir, removed when dropped.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A fresh, empty directory whose name includes `label` and the process id.
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!("echoseg-test-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `text` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs the study of `manifest` quietly with the default options, as `echoseg run --quiet` does,
/// writing under `reports`; returns the report page.
pub fn run_quietly(manifest: &Path, reports: &Path) -> anyhow::Result<PathBuf> {
    let invocation = echoseg::Invocation { manifest: manifest.to_path_buf(), overrides: vec![] };
    echoseg::run(&invocation, reports, &echoseg::RunOptions { quiet: true, ..Default::default() }, "test")
}

/// A study small enough to run in seconds: 32 × 32 images, two tiny architectures, one generation.
pub const TINY_MANIFEST: &str = include_str!("../fixtures/tiny.toml");
