//! Progress bars and one-line summaries on the terminal.

use std::collections::HashMap;
use std::time::Duration;

use echoseg_nets::Progress;
use echoseg_study::RunOutcome;
use echoseg_study::plan::rounds::Round;
use echoseg_study::plan::{HeldOut, Plan, PlannedRun, Teaching};
use echoseg_study::run::engine::Observer;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws a bar per run in training (several when runs train in parallel jobs) and prints one
/// line per finished run; silent when quiet.
pub struct Terminal {
    quiet: bool,
    bars: MultiProgress,
    active: HashMap<String, ProgressBar>,
    labels: HashMap<String, String>,
}

impl Terminal {
    /// A terminal observer.
    pub fn new(quiet: bool) -> Self {
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        Self { quiet, bars, active: HashMap::new(), labels: HashMap::new() }
    }

    /// Clears any bar left.
    pub fn finish(&mut self) {
        for (_, bar) in self.active.drain() {
            bar.finish_and_clear();
        }
    }

    fn label(&self, run: &PlannedRun) -> String {
        self.labels.get(&run.id).cloned().unwrap_or_else(|| run.id.clone())
    }

    fn say(&self, line: &str) {
        if self.active.is_empty() || self.bars.println(line).is_err() {
            eprintln!("{line}");
        }
    }
}

fn describe(run: &PlannedRun, plan: &Plan) -> String {
    let teacher = plan.teacher_name(run);
    if let Teaching::CrossFit { held_out } = run.teaching {
        match held_out {
            HeldOut::Fold { fold, folds } => format!("label issues: {} without fold {}/{folds}", run.model, fold + 1),
            HeldOut::Source(source) => format!("label issues: {} without source {}", run.model, source + 1),
        }
    } else if teacher.is_empty() {
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
        let bar = self.bars.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{prefix} {wide_bar:.cyan/blue} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(format!("[{}/{}] {}", position + 1, total, self.label(run)));
        bar.enable_steady_tick(Duration::from_millis(250));
        self.active.insert(run.id.clone(), bar);
    }

    fn progress(&mut self, run: &PlannedRun, p: &Progress) {
        if let Some(bar) = self.active.get(&run.id) {
            bar.set_length((p.steps * p.epochs) as u64);
            bar.set_position(((p.epoch - 1) * p.steps + p.step) as u64);
            let stage = if p.pretraining { "BYOL " } else { "" };
            bar.set_message(format!("{stage}epoch {}/{} loss {:.3} {:.0} img/s", p.epoch, p.epochs, p.loss, p.images_per_second));
        }
    }

    fn round(&mut self, round: &Round) {
        if self.quiet {
            return;
        }
        let chains: Vec<String> = round.chains.iter().map(|c| format!("g{} {} ({})", c.generation, c.model, c.treatment)).collect();
        let last = round.first + round.seeds - 1;
        let repeats = if round.seeds == 1 { format!("repeat {last}") } else { format!("repeats {}–{last}", round.first) };
        self.say(&format!("undecided after {} seeds: {repeats} added to {}", round.first, chains.join(", ")));
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
        if let Some(bar) = self.active.remove(&run.id) {
            bar.finish_and_clear();
        }
        self.say(&line);
    }
}
