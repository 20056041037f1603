//! Progress bars and one-line summaries on the terminal.

use std::collections::HashMap;
use std::time::Duration;

use echoseg_nets::Progress;
use echoseg_study::engine::{Observer, RunOutcome};
use echoseg_study::plan::{Plan, PlannedRun};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws a bar per training run and prints one line per finished run; silent when quiet.
pub struct Terminal {
    quiet: bool,
    bar: Option<ProgressBar>,
    labels: HashMap<String, String>,
}

impl Terminal {
    /// A terminal observer.
    pub fn new(quiet: bool) -> Self {
        Self { quiet, bar: None, labels: HashMap::new() }
    }

    /// Clears any bar left.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn label(&self, run: &PlannedRun) -> String {
        self.labels.get(&run.id).cloned().unwrap_or_else(|| run.id.clone())
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

fn describe(run: &PlannedRun, plan: &Plan) -> String {
    let teacher = plan.teacher_name(run);
    if teacher.is_empty() {
        format!("g{} {} ({}) r{}", run.generation, run.model, run.treatment(), run.repeat)
    } else {
        format!("g{} {} ← {} ({}) r{}", run.generation, run.model, teacher, run.treatment(), run.repeat)
    }
}

impl Observer for Terminal {
    fn planned(&mut self, plan: &Plan, mine: usize, reused: usize) {
        if !self.quiet {
            let share = if mine < plan.runs.len() { format!(" (this shard: {mine})") } else { String::new() };
            eprintln!("{} run(s) planned{share}, {} already finished", plan.runs.len(), reused);
        }
        self.labels = plan.runs.iter().map(|r| (r.id.clone(), describe(r, plan))).collect();
    }

    fn run_started(&mut self, run: &PlannedRun, position: usize, total: usize) {
        if self.quiet {
            return;
        }
        self.finish();
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(8));
        bar.set_style(
            ProgressStyle::with_template("{prefix} {wide_bar:.cyan/blue} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(format!("[{}/{}] {}", position + 1, total, self.label(run)));
        bar.enable_steady_tick(Duration::from_millis(250));
        self.bar = Some(bar);
    }

    fn progress(&mut self, _run: &PlannedRun, p: &Progress) {
        if let Some(bar) = &self.bar {
            bar.set_length((p.steps * p.epochs) as u64);
            bar.set_position(((p.epoch - 1) * p.steps + p.step) as u64);
            let stage = if p.pretraining { "BYOL " } else { "" };
            bar.set_message(format!("{stage}epoch {}/{} loss {:.3} {:.0} img/s", p.epoch, p.epochs, p.loss, p.images_per_second));
        }
    }

    fn run_finished(&mut self, run: &PlannedRun, outcome: &RunOutcome, reused: bool) {
        if self.quiet {
            return;
        }
        let offset = outcome.fingerprint.boundary_offset.map_or("–".to_string(), |o| format!("{o:+.2} px"));
        let scores = if outcome.scored {
            format!("mIoU {:.3}, boundary offset {offset}", outcome.test.miou)
        } else {
            "no truth to score against".into()
        };
        let line = format!(
            "{} {}: {scores}, {}",
            if reused { "=" } else { "✓" },
            self.label(run),
            if reused { "reused".to_string() } else { format!("{:.1} s", outcome.seconds) }
        );
        self.finish();
        self.say(&line);
    }
}
