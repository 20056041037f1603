//! `echoseg plan`: the runs a manifest expands to, with a time estimate from a short timing of
//! each architecture at the study's image size and batch.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use echoseg_nets::{BenchCase, bench};
use echoseg_study::StudyDir;
use echoseg_study::analysis::resolution::expected_resolution;
use echoseg_study::analysis::rows::{answer_rows, read_verdicts};
use echoseg_study::plan::data::StudyData;
use echoseg_study::plan::manifest;
use echoseg_study::plan::rounds::{Round, may_add, next_round, plan_with_rounds};
use echoseg_study::plan::schedule::{Jobs, dependencies, makespan};
use echoseg_study::plan::{PlannedRun, Teaching};

/// Images one run trains on and predicts, which with a timing give its estimated seconds.
struct Workload {
    /// Images per epoch (what the table shows).
    training_images: usize,
    /// Images over the whole step budget.
    trained_images: usize,
    predicted_images: usize,
    /// Images seen by BYOL pre-training (each trained on and predicted by the target once).
    pretraining_images: usize,
}

/// Prints the plan of `manifest` (with `overrides` applied); with `timing`, times two training
/// steps of each architecture first and estimates every run's and the study's wall time.
pub fn print(path: &Path, overrides: &[String], timing: bool) -> Result<()> {
    let m = manifest::load_with(path, overrides)?;
    let data = StudyData::load(&m).with_context(|| format!("{}: the data does not fit the manifest", path.display()))?;
    let plan = echoseg_study::plan(&m, &data);
    let workload = |run: &PlannedRun| {
        let training_images = match run.teaching {
            Teaching::Labels | Teaching::Truth => data.train.len(),
            Teaching::CrossFit { held_out } => held_out.members(&data.train, false).count(),
            Teaching::PseudoLabels { strategy, pseudo_labels, .. } => {
                strategy.training_images(data.train.len(), data.pool.len() * pseudo_labels.pool_copies(run.generation), m.study.mix)
            }
        };
        // The driver shuffles the student's samples (a mean teacher's labelled ones, each batch paired with pool images).
        let items = match run.strategy() {
            Some(echoseg_study::plan::manifest::Strategy::Ema) => data.train.len(),
            _ => training_images,
        };
        let steps = m.train.total_steps(items);
        let epochs = steps.div_ceil(items.div_ceil(m.train.batch_size).max(1));
        let trained_images = steps * m.train.batch_size * training_images / items.max(1);
        let pool = if run.generation < m.study.generations { data.pool.len() } else { 0 };
        // Validation is predicted once per epoch; the test sets and the pool once after training.
        let predicted_images = data.validation.len() * epochs + data.test.len() + data.test_twins.len() + data.synthetic_test.len() + pool;
        // A pre-trained model's generation 0 pre-trains; later runs reuse its weights.
        let pretraining_images = match &m.byol {
            Some(byol) if run.generation == 0 && run.network.pretrain.is_some() => 2 * byol.epochs * data.pool.len(),
            _ => 0,
        };
        Workload { training_images, trained_images, predicted_images, pretraining_images }
    };

    // Images per second for training and for inference, per architecture.
    let mut speed: BTreeMap<&'static str, (f64, f64)> = BTreeMap::new();
    let threads = if m.threads > 0 { m.threads } else { rayon::current_num_threads() };
    let jobs = Jobs::within(m.jobs, threads);
    // Each job trains with its share of the threads, so time the architectures with that share.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.threads_per_job).build().context("cannot start worker threads")?;
    if timing {
        let device = m.device.open()?;
        for network in &m.networks {
            if speed.contains_key(network.architecture.name()) {
                continue;
            }
            let side = data.training_side(m.train.crop);
            eprintln!("timing {} ({side}×{side} px, batch {})…", network.architecture.name(), m.train.batch_size);
            let case = BenchCase { network: *network, size: side, batch: m.train.batch_size, steps: 2 };
            let result =
                pool.install(|| bench(&case, &device)).with_context(|| format!("timing {} failed", network.architecture.name()))?;
            speed.insert(network.architecture.name(), (result.train_images_per_second, result.infer_fused_images_per_second));
        }
    }

    let budget = match m.train.budget() {
        echoseg_nets::Budget::Steps(steps) => format!("{steps} optimiser step(s)"),
        echoseg_nets::Budget::Epochs(epochs) => format!("{epochs} epoch(s)"),
    };
    println!("study `{}`: {} run(s), {budget} each at most, on {}", m.name, plan.runs.len(), m.device.name());
    let id_width = plan.runs.iter().map(|r| r.id.len()).max().unwrap_or(3);
    println!(
        "{:<id_width$} {:>3} {:>6} {:<10} {:<10} {:<14} {:<10} {:<10} {:>6} {:>8}",
        "run", "gen", "repeat", "model", "strategy", "selection", "labels", "teacher", "images", "estimate"
    );
    let estimate = |run: &PlannedRun, work: &Workload| {
        speed.get(run.network.architecture.name()).map(|&(train_ips, infer_ips)| {
            (work.trained_images + work.pretraining_images) as f64 / train_ips
                + (work.predicted_images + work.pretraining_images) as f64 / infer_ips
        })
    };
    let mut seconds = Vec::with_capacity(plan.runs.len());
    for run in &plan.runs {
        let work = workload(run);
        let teacher = plan.teacher_name(run);
        let teacher = if teacher.is_empty() { "-".to_string() } else { teacher };
        let treatment = run.treatment();
        let estimate = estimate(run, &work);
        seconds.push(estimate.unwrap_or(0.0));
        println!(
            "{:<id_width$} {:>3} {:>6} {:<10} {:<10} {:<14} {:<10} {:<10} {:>6} {:>8}",
            run.id,
            run.generation,
            run.repeat,
            run.model,
            treatment.strategy_column(),
            treatment.selection_column(),
            if run.generation == 0 { "-" } else { treatment.pseudo_labels().name() },
            teacher,
            work.training_images,
            estimate.map(|s| format!("{s:.0} s")).unwrap_or_else(|| "-".into())
        );
    }
    if timing {
        let wall = makespan(&seconds, &dependencies(&plan), jobs.jobs);
        println!(
            "estimated total: {:.0} s ({:.1} min) with {} job(s) × {} thread(s) at once ({:.0} s of training and prediction at the full budget); early stopping can only shorten it",
            wall,
            wall / 60.0,
            jobs.jobs,
            jobs.threads_per_job,
            seconds.iter().sum::<f64>()
        );
        // A generation waits for the one before it, so what it costs is the time a chain waits.
        for generation in 0..=m.study.generations {
            let of: Vec<f64> = plan.runs.iter().zip(&seconds).filter(|(r, _)| r.generation == generation).map(|(_, s)| *s).collect();
            println!(
                "  generation {generation}: {} run(s), {:.0} s of training and prediction ({:.0} s with {} job(s))",
                of.len(),
                of.iter().sum::<f64>(),
                of.iter().sum::<f64>() / jobs.jobs.max(1) as f64,
                jobs.jobs
            );
        }
    }
    if may_add(&m, &[]) {
        // The most a study can add: every chain undecided at every look, rounds taken as the engine takes them.
        let every_chain: Vec<usize> = (0..plan.runs.len()).filter(|&i| plan.runs[i].chain && plan.runs[i].generation > 0).collect();
        let mut rounds: Vec<Round> = Vec::new();
        while let Some(round) = next_round(&m, &plan, &rounds, &every_chain) {
            rounds.push(round);
        }
        let step = m.study.repeats_per_round;
        let most = plan_with_rounds(&m, &data, &rounds);
        let added = &most.runs[plan.tabled()..most.tabled()];
        let more = if timing {
            format!(", {:.0} s of training and prediction", added.iter().filter_map(|r| estimate(r, &workload(r))).sum::<f64>())
        } else {
            String::new()
        };
        println!(
            "study.max_repeats = {}: after the {} planned seeds, up to {} round(s) of {step} add seeds where verdicts are still undecided: \
             at most {} more run(s){more} if every verdict stays undecided; verdict intervals at {:.1} % ({} looks)",
            m.study.most_repeats(),
            m.study.repeats,
            rounds.len(),
            added.len(),
            100.0 * m.study.verdict_confidence(),
            m.study.looks()
        );
    }
    Ok(())
}

/// Prints, from the verdicts of the finished study in `pilot`, how many verdicts the manifest's
/// number of seeds (and a ladder of others) is expected to decide.
pub fn print_resolution(path: &Path, overrides: &[String], pilot: &StudyDir) -> Result<()> {
    let m = manifest::load_with(path, overrides)?;
    let verdicts = read_verdicts(&pilot.verdicts_parquet())?;
    if verdicts.is_empty() {
        bail!("{} has no verdicts (no finished study with a pseudo-label generation and truth)", pilot.root().display());
    }
    let seen = expected_resolution(&verdicts, 0);
    let pilot_repeats = verdicts.iter().map(|v| v.repeats).max().unwrap_or(0);
    let decided_now = answer_rows(&verdicts).iter().filter(|v| v.verdict.decided()).count();
    println!(
        "\nfrom `{}` ({pilot_repeats} seed(s); {decided_now} of {} answer-table verdicts decided): expected decided verdicts, \
         if every change and its spread stay as measured there",
        pilot.root().display(),
        seen.verdicts
    );
    if seen.without_spread > 0 {
        println!("({} verdict(s) have no spread, a single seed: they count as undecided)", seen.without_spread);
    }
    let planned = m.study.repeats as usize;
    let mut ladder: Vec<usize> = [2, 3, 4, 6, 8, 12, 16, 24, 32].into_iter().chain([planned]).collect();
    ladder.sort_unstable();
    ladder.dedup();
    for repeats in ladder {
        let r = expected_resolution(&verdicts, repeats);
        let share = if r.verdicts == 0 { 0.0 } else { r.expected_decided / r.verdicts as f64 };
        let mark = if repeats == planned { "  ← this manifest's study.repeats" } else { "" };
        println!("  {repeats:>3} seeds: {:>5.1} of {} ({:>3.0} %){mark}", r.expected_decided, r.verdicts, 100.0 * share);
    }
    Ok(())
}
