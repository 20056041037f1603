//! Runs in parallel: a study trained with several runs at once equals one trained a run at a
//! time, table for table, whatever the split of threads between the jobs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::path::Path;

use echoseg_nets::DeviceChoice;
use echoseg_study::{Reuse, Silent, StudyDir, plan::manifest, run_study};
use echoseg_tests::{Scratch, TINY_MANIFEST};

/// The tiny study with two repeats, so generation 0 alone has four independent runs.
fn tiny_with(jobs: usize) -> String {
    format!(
        "jobs = {jobs}\n{}",
        TINY_MANIFEST.replace("strategies = [\"self\", \"cross\"]", "strategies = [\"self\", \"cross\"]\nrepeats = 2")
    )
}

/// Every table a study writes, as text; the history's throughput column (a timing) left out.
fn tables(dir: &StudyDir) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in ["results.csv", "summary.csv", "verdicts.csv", "targets.csv", "pretraining.csv"] {
        let path = dir.root().join(name);
        out.push((name.to_string(), std::fs::read_to_string(&path).unwrap_or_default()));
    }
    let history = std::fs::read_to_string(dir.root().join("history.csv")).unwrap();
    let mut lines = history.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let timing = header.iter().position(|h| *h == "images_per_second");
    let without_timing = |line: &str| -> String {
        line.split(',').enumerate().filter(|(i, _)| Some(*i) != timing).map(|(_, v)| v).collect::<Vec<_>>().join(",")
    };
    out.push(("history.csv".into(), history.lines().map(without_timing).collect::<Vec<_>>().join("\n")));
    out
}

#[test]
fn three_jobs_of_one_thread_equal_one_job_of_two_threads() {
    let scratch = Scratch::new("parallel");
    let device = DeviceChoice::Flex.open().unwrap();
    let study = |jobs: usize, threads: usize, dir: &str| {
        let m = manifest::parse(Path::new("tiny.toml"), &tiny_with(jobs)).unwrap();
        let dir = StudyDir::new(&scratch.path().join(dir), &m.name);
        // The study's thread budget is the pool it is started in.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let summary = pool.install(|| run_study(&m, &dir, &device, Reuse::Nothing, &mut Silent)).unwrap();
        (summary, dir)
    };
    let (serial, serial_dir) = study(1, 2, "serial");
    let (parallel, parallel_dir) = study(3, 3, "parallel");
    assert_eq!((serial.jobs.jobs, serial.jobs.threads_per_job), (1, 2));
    assert_eq!((parallel.jobs.jobs, parallel.jobs.threads_per_job), (3, 1));
    assert_eq!(serial.trained, 16);
    assert_eq!(parallel.trained, 16);
    let ids = |s: &echoseg_study::StudySummary| s.outcomes.iter().map(|o| o.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&serial), ids(&parallel), "outcomes must come back in plan order");
    for ((name, a), (_, b)) in tables(&serial_dir).iter().zip(&tables(&parallel_dir)) {
        assert!(!a.is_empty() || name != "results.csv", "{name} is empty");
        assert!(a == b, "{name} differs between 1 job × 2 threads and 3 jobs × 1 thread");
    }
}
