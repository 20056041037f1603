//! Provenance: what produced a study's numbers, written beside them as `provenance.json`.

use serde::{Deserialize, Serialize};

/// Versions, machine, settings and cost of a study run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// echoseg's version.
    pub echoseg_version: String,
    /// `git describe` of the working tree, when run inside a git checkout.
    pub git_revision: Option<String>,
    /// The burn version the networks ran on.
    pub burn_version: String,
    /// The compute device.
    pub device: String,
    /// Worker threads.
    pub threads: usize,
    /// Runs trained at once.
    #[serde(default)]
    pub jobs: usize,
    /// Worker threads of each run.
    #[serde(default)]
    pub threads_per_job: usize,
    /// Peak resident memory of the process in MiB (Linux only).
    #[serde(default)]
    pub peak_memory_mib: Option<f64>,
    /// The command line.
    pub command: String,
    /// When the study finished, as seconds since the Unix epoch.
    pub finished_unix: u64,
    /// Wall time of the study in seconds.
    pub wall_seconds: f64,
    /// CPU time of the process in seconds (Linux only).
    pub cpu_seconds: Option<f64>,
    /// Runs trained by this invocation.
    pub runs_trained: usize,
    /// Runs found finished in the store and reused.
    pub runs_reused: usize,
    /// The manifest's seed.
    #[serde(default)]
    pub seed: u64,
    /// Each architecture with its size (`unet (width 12, depth 2)`).
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Pseudo-labelling generations after generation 0.
    #[serde(default)]
    pub generations: u32,
    /// Seeds every configuration ran with.
    #[serde(default)]
    pub repeats: u32,
}

/// burn's version, as pinned in the workspace.
pub const BURN_VERSION: &str = "0.22.1";

/// `git describe --always --dirty` in the current directory, if git and a repository are there.
pub fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git").args(["describe", "--always", "--dirty"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()).filter(|s| !s.is_empty())
}

/// User plus system CPU time of this process, from `/proc/self/stat` (clock ticks of 1/100 s).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
