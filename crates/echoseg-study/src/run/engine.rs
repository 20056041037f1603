//! The study engine: runs the plan, each run into its own directory of the run store, and
//! gathers every finished run's results into the results tables.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use echoseg_agree::{Calibration, Confusion, TruthScores, pooled_confusion};
use echoseg_nets::{
    ByolConfig, ByolReport, Device, Network, Probabilities, Progress, Sample, Tiling, TrainingRequest, Valid, load_network, predict_tiled,
    predict_with_hardness, pretrain_byol, save_network, train_mean_teacher, train_resumable,
};
use echoseg_scene::Scene;
use rayon::prelude::*;
use serde::Serialize;

use crate::StudyError;
use crate::analysis::fingerprints::{as_slices, cue_reliance, fingerprint_of};
use crate::analysis::outcome::RunOutcome;
use crate::analysis::tables;
use crate::plan::data::{LabelledScene, StudyData};
use crate::plan::manifest::{Manifest, Strategy};
use crate::plan::rounds::{Round, may_add, next_round, plan_with_rounds};
use crate::plan::schedule::{self, Jobs};
use crate::plan::selection::{Selection, SelectionRecord, labelled_pixels, pseudo_weight};
use crate::plan::strategy::PseudoLabels;
use crate::plan::{Plan, PlannedRun, Teaching};
use crate::store::{RunDir, StudyDir, read_json, read_labels, write_json, write_labels};

/// What the engine tells whoever runs it (the CLI draws progress bars from this). Runs train
/// in parallel jobs, so calls for different runs interleave; each call names its run.
pub trait Observer: Send {
    /// The study is planned; this process will see `mine` of its runs (all but other shards'),
    /// of which `reused` are already finished in the store.
    fn planned(&mut self, _plan: &Plan, _mine: usize, _reused: usize) {}
    /// A run starts training; `position` is its place among this process's runs in plan order.
    fn run_started(&mut self, _run: &PlannedRun, _position: usize, _total: usize) {}
    /// Training progress of a run.
    fn progress(&mut self, _run: &PlannedRun, _progress: &Progress) {}
    /// A run finished (or was found finished, when `reused`).
    fn run_finished(&mut self, _run: &PlannedRun, _outcome: &RunOutcome, _reused: bool) {}
    /// Verdicts are still undecided: `round` adds seeds to their chains (`study.max_repeats`).
    fn round(&mut self, _round: &Round) {}
}

/// An observer that says nothing (for tests and `--quiet`).
pub struct Silent;

impl Observer for Silent {}

/// How a study should treat runs already in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// Keep finished runs whose settings match (resume).
    Finished,
    /// Recompute every run.
    Nothing,
}

/// What a finished study reports.
#[derive(Clone, Debug)]
pub struct StudySummary {
    /// The plan that ran.
    pub plan: Plan,
    /// The outcome of every run, in plan order.
    pub outcomes: Vec<RunOutcome>,
    /// Runs trained now (the rest were reused).
    pub trained: usize,
    /// Wall time in seconds.
    pub seconds: f64,
    /// How many runs trained at once, with how many threads each.
    pub jobs: Jobs,
}

/// One of `count` disjoint slices of a study's plan (`index` is 1-based), for running a study
/// on several machines into one shared run store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, 1 ..= `count`.
    pub index: usize,
    /// How many slices.
    pub count: usize,
}

impl Shard {
    /// Parses `I/N`.
    pub fn parse(text: &str) -> Option<Self> {
        let (i, n) = text.split_once('/')?;
        let (index, count) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
        (1..=count).contains(&index).then_some(Self { index, count })
    }

    /// Whether `run` belongs to this slice. Slices follow repeats, because a repeat's runs
    /// teach each other and must share a machine; repeats never depend on one another.
    pub fn owns(&self, run: &PlannedRun) -> bool {
        run.repeat as usize % self.count == self.index - 1
    }
}

/// Runs the study of `manifest` into `dir` on `device` and writes the results tables.
pub fn run_study(
    manifest: &Manifest,
    dir: &StudyDir,
    device: &Device,
    reuse: Reuse,
    observer: &mut dyn Observer,
) -> Result<StudySummary, StudyError> {
    run_study_shard(manifest, dir, device, reuse, None, observer)
}

/// Like [`run_study`], but with a `shard` only that slice's runs; the results tables are then
/// left to [`merge_study`], once every slice has finished. With `study.max_repeats`, seeds are
/// added in rounds ([`crate::plan::rounds`]); a shard runs its share of every round whose look it can
/// take, and a round that waits for other shards' runs is taken up when the shard runs again.
pub fn run_study_shard(
    manifest: &Manifest,
    dir: &StudyDir,
    device: &Device,
    reuse: Reuse,
    shard: Option<Shard>,
    observer: &mut dyn Observer,
) -> Result<StudySummary, StudyError> {
    let started = Instant::now();
    if let Some(shard) = shard
        && shard.count > manifest.study.repeats as usize
    {
        return Err(StudyError::Config(format!(
            "{} shards for a study of {} repeat(s): shards split the plan by repeat (a repeat's runs teach each other), so use at most {} shards or raise study.repeats",
            shard.count, manifest.study.repeats, manifest.study.repeats
        )));
    }
    let data = StudyData::load(manifest)?;
    write_json(&dir.splits(), &data.splits(manifest))?;
    let jobs = Jobs::within(manifest.jobs, rayon::current_num_threads());
    let mut pass = Pass { manifest, data: &data, dir, device, reuse, shard, jobs, trained: HashMap::new(), announced: HashSet::new() };
    let mut rounds: Vec<Round> = Vec::new();
    loop {
        let plan = plan_with_rounds(manifest, &data, &rounds);
        let known = pass.run(&plan, observer)?;
        let summary = |plan: Plan, known: Vec<Option<RunOutcome>>, trained: usize| {
            let outcomes = plan.runs.iter().zip(known).filter(|(r, _)| shard.is_none_or(|s| s.owns(r))).filter_map(|(_, o)| o).collect();
            StudySummary { plan, outcomes, trained, seconds: started.elapsed().as_secs_f64(), jobs }
        };
        // A round that waits for other shards' runs is taken up when this shard runs again.
        let Some(outcomes) = known.iter().cloned().collect::<Option<Vec<RunOutcome>>>() else {
            return Ok(summary(plan, known, pass.trained.len()));
        };
        match look(manifest, &plan, &outcomes, &data, dir, &rounds)? {
            Some(round) => {
                observer.round(&round);
                rounds.push(round);
            }
            None => {
                if shard.is_none() {
                    tables::write_tables(manifest, &plan, &outcomes, &data, dir)?;
                }
                return Ok(summary(plan, known, pass.trained.len()));
            }
        }
    }
}

/// The round the verdicts of a finished `plan` ask for, if the manifest adds seeds.
fn look(
    manifest: &Manifest,
    plan: &Plan,
    outcomes: &[RunOutcome],
    data: &StudyData,
    dir: &StudyDir,
    rounds: &[Round],
) -> Result<Option<Round>, StudyError> {
    if !may_add(manifest, rounds) {
        return Ok(None);
    }
    let undecided = tables::undecided_runs(manifest, plan, outcomes, data, dir)?;
    Ok(next_round(manifest, plan, rounds, &undecided))
}

/// Runs the plans of one study, round after round, on one process: what it trained so far and
/// which runs it told the observer about.
struct Pass<'a> {
    manifest: &'a Manifest,
    data: &'a StudyData,
    dir: &'a StudyDir,
    device: &'a Device,
    reuse: Reuse,
    shard: Option<Shard>,
    jobs: Jobs,
    /// The runs this process trained, by id: finished whatever `reuse` says.
    trained: HashMap<String, RunOutcome>,
    /// The runs the observer already heard of, so that a later round announces only its new ones.
    announced: HashSet<String>,
}

impl Pass<'_> {
    /// Trains this process's unfinished runs of `plan`; returns every run's outcome where known
    /// (other shards' runs from the store, when they have finished).
    fn run(&mut self, plan: &Plan, observer: &mut dyn Observer) -> Result<Vec<Option<RunOutcome>>, StudyError> {
        let (manifest, dir, reuse) = (self.manifest, self.dir, self.reuse);
        let mine_of = |r: &PlannedRun| self.shard.is_none_or(|s| s.owns(r));
        let stored = |r: &PlannedRun| read_json::<RunOutcome>(&dir.run(&r.id).outcome()).ok().filter(|o| o.id == r.id);
        let mut known: Vec<Option<RunOutcome>> = plan
            .runs
            .iter()
            .map(|r| match self.trained.get(&r.id) {
                Some(outcome) => Some(outcome.clone()),
                None if reuse == Reuse::Finished || !mine_of(r) => stored(r),
                None => None,
            })
            .collect();
        let mine: Vec<usize> = (0..plan.runs.len()).filter(|&i| mine_of(&plan.runs[i])).collect();
        let fresh: Vec<usize> = mine.iter().copied().filter(|&i| !self.announced.contains(&plan.runs[i].id)).collect();
        observer.planned(plan, mine.len(), mine.iter().filter(|&&i| known[i].is_some()).count());
        for &i in &fresh {
            if let Some(outcome) = &known[i] {
                observer.run_finished(&plan.runs[i], outcome, true);
            }
            self.announced.insert(plan.runs[i].id.clone());
        }
        let todo: Vec<usize> = mine.iter().copied().filter(|&i| known[i].is_none()).collect();
        let done: Vec<bool> = known.iter().map(Option::is_some).collect();
        let position = |i: usize| mine.iter().position(|&m| m == i).unwrap_or(i);
        let study = StudyContext { manifest, plan, data: self.data, dir, device: self.device };
        let shared = Mutex::new(observer);
        let trained = schedule::run_all(&todo, &schedule::dependencies(plan), &done, self.jobs, |i| {
            let run = &plan.runs[i];
            if reuse == Reuse::Nothing {
                forget_earlier_training(manifest, dir, run);
            }
            let mut observer = SharedObserver(&shared);
            observer.run_started(run, position(i), mine.len());
            let outcome = execute(&study, run, &mut observer)?;
            observer.run_finished(run, &outcome, false);
            Ok::<RunOutcome, StudyError>(outcome)
        })?;
        for (i, outcome) in todo.into_iter().zip(trained) {
            self.trained.insert(outcome.id.clone(), outcome.clone());
            known[i] = Some(outcome);
        }
        Ok(known)
    }
}

/// Removes what an earlier study left of `run`: a fresh study must not continue a half-trained
/// run, nor start from an earlier study's pre-training (its generation 0 comes first).
fn forget_earlier_training(manifest: &Manifest, dir: &StudyDir, run: &PlannedRun) {
    let _ = std::fs::remove_dir_all(dir.run(&run.id).training_state());
    if run.generation == 0
        && run.network.pretrain.is_some()
        && let Some(byol) = &manifest.byol
    {
        let _ = std::fs::remove_dir_all(dir.run(&pretraining_id(manifest, run, byol).0).root());
    }
}

/// The study's observer, shared by the jobs: each call holds it only for that call.
struct SharedObserver<'a, 'o>(&'a Mutex<&'o mut dyn Observer>);

impl SharedObserver<'_, '_> {
    fn with(&self, f: impl FnOnce(&mut dyn Observer)) {
        let mut observer = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut **observer);
    }
}

impl Observer for SharedObserver<'_, '_> {
    fn planned(&mut self, plan: &Plan, mine: usize, reused: usize) {
        self.with(|o| o.planned(plan, mine, reused));
    }
    fn run_started(&mut self, run: &PlannedRun, position: usize, total: usize) {
        self.with(|o| o.run_started(run, position, total));
    }
    fn progress(&mut self, run: &PlannedRun, progress: &Progress) {
        self.with(|o| o.progress(run, progress));
    }
    fn run_finished(&mut self, run: &PlannedRun, outcome: &RunOutcome, reused: bool) {
        self.with(|o| o.run_finished(run, outcome, reused));
    }
    fn round(&mut self, round: &Round) {
        self.with(|o| o.round(round));
    }
}

/// Gathers the finished runs of every shard of `manifest`'s study from `dir` and writes the
/// results tables, taking the same looks (and rounds of added seeds) as the shards did; fails
/// naming the runs that are missing.
pub fn merge_study(manifest: &Manifest, dir: &StudyDir) -> Result<StudySummary, StudyError> {
    let started = Instant::now();
    let data = StudyData::load(manifest)?;
    let mut rounds: Vec<Round> = Vec::new();
    loop {
        let plan = plan_with_rounds(manifest, &data, &rounds);
        let mut outcomes = Vec::with_capacity(plan.runs.len());
        let mut missing = Vec::new();
        for run in &plan.runs {
            match read_json::<RunOutcome>(&dir.run(&run.id).outcome()).ok().filter(|o| o.id == run.id) {
                Some(outcome) => outcomes.push(outcome),
                None => missing.push(run.id.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(StudyError::Incomplete { runs: dir.runs(), missing });
        }
        match look(manifest, &plan, &outcomes, &data, dir, &rounds)? {
            Some(round) => rounds.push(round),
            None => {
                tables::write_tables(manifest, &plan, &outcomes, &data, dir)?;
                let jobs = Jobs::within(manifest.jobs, rayon::current_num_threads());
                return Ok(StudySummary { plan, outcomes, trained: 0, seconds: started.elapsed().as_secs_f64(), jobs });
            }
        }
    }
}

/// What every run of one study shares: the manifest, its plan and data, the run store and the device.
#[derive(Clone, Copy)]
struct StudyContext<'a> {
    manifest: &'a Manifest,
    plan: &'a Plan,
    data: &'a StudyData,
    dir: &'a StudyDir,
    device: &'a Device,
}

/// What a teacher says about how sure it is of its pool labels: top-class probability and angular hardness.
struct PoolEvidence {
    confidence: Vec<Vec<u8>>,
    hardness: Vec<Vec<u8>>,
}

const RADIANS_PER_STEP: f32 = std::f32::consts::PI / 255.0;

/// Predicts the pool with `network` (of run `id`) and writes the teacher's evidence into the run store.
fn write_pool_evidence(study: &StudyContext<'_>, network: &echoseg_nets::Network, id: &str) -> Result<(), StudyError> {
    let StudyContext { manifest, data, dir, device, .. } = *study;
    let run_dir = dir.run(id);
    let images: Vec<_> = data.pool.iter().map(|s| &s.image).collect();
    let (probabilities, hardness) = predict_with_hardness(network, &images, manifest.inference_batch, manifest.tiling, device)
        .map_err(|source| StudyError::Nets { run: id.to_string(), source })?;
    let quantise = |v: &[f32], step: f32| v.iter().map(|x| (x / step).round().clamp(0.0, 255.0) as u8).collect::<Vec<u8>>();
    let labels: Vec<Vec<u8>> = probabilities.iter().map(Probabilities::argmax).collect();
    let confidence: Vec<Vec<u8>> = probabilities.iter().map(|p| quantise(&p.confidence(), 1.0 / 255.0)).collect();
    let hardness: Vec<Vec<u8>> = hardness.iter().map(|h| quantise(h, RADIANS_PER_STEP)).collect();
    let sizes = StudyData::sizes(&data.pool);
    write_labels(&run_dir.pool_confidence(), &sizes, &confidence)?;
    write_labels(&run_dir.pool_hardness(), &sizes, &hardness)?;
    write_labels(&run_dir.pool_labels(), &sizes, &labels)
}

/// A teacher's pool evidence, for selections; a teacher finished before confidence and hardness
/// were stored predicts the pool again from its checkpoint.
fn pool_evidence(study: &StudyContext<'_>, teacher: &PlannedRun) -> Result<PoolEvidence, StudyError> {
    let StudyContext { dir, device, .. } = *study;
    let run_dir = dir.run(&teacher.id);
    if !run_dir.pool_confidence().exists() || !run_dir.pool_hardness().exists() {
        let network = load_network(&teacher.network, &run_dir.checkpoint(), device)
            .map_err(|source| StudyError::Nets { run: teacher.id.clone(), source })?
            .for_inference();
        write_pool_evidence(study, &network, &teacher.id)?;
    }
    Ok(PoolEvidence { confidence: read_labels(&run_dir.pool_confidence())?.maps, hardness: read_labels(&run_dir.pool_hardness())?.maps })
}

/// The per-pixel mean over teachers of quantised maps, in units of `step`.
fn mean_of(maps: &[&Vec<Vec<u8>>], step: f32) -> Vec<Vec<f32>> {
    (0..maps[0].len())
        .map(|i| (0..maps[0][i].len()).map(|p| maps.iter().map(|m| f32::from(m[i][p])).sum::<f32>() * step / maps.len() as f32).collect())
        .collect()
}

fn training_samples(study: &StudyContext<'_>, run: &PlannedRun) -> Result<(Vec<Sample>, Option<SelectionRecord>), StudyError> {
    let StudyContext { manifest, plan, data, dir, .. } = *study;
    let originals = || data.train.iter().map(as_sample);
    let (strategy, selection, mode) = match &run.teaching {
        Teaching::Labels => return Ok((originals().collect(), None)),
        Teaching::CrossFit { held_out } => return Ok((held_out.members(&data.train, false).map(as_sample).collect(), None)),
        Teaching::Truth => return Ok((exact_samples(data.train.iter().map(|l| &l.scene), run, dir)?, None)),
        Teaching::PseudoLabels { strategy, selection, pseudo_labels, .. } => (*strategy, selection, *pseudo_labels),
    };
    // The mean teacher makes its pool targets online, from the labelled images plus the pool; at
    // `mix = 0` (the null arm) a student learns the labels exactly as generation 0 did, with its own seed.
    if strategy == Strategy::Ema || manifest.study.mix == 0.0 {
        return Ok((originals().collect(), None));
    }
    let teachers = plan.teachers_of(run);
    if teachers.is_empty() {
        return Err(StudyError::Format { path: dir.run(&run.id).settings(), message: "a pseudo-label run without a teacher".into() });
    }
    // Replace: the teachers' pseudo-labels. Accumulate: also those of every earlier generation of
    // the lineage, newest first, each generation's teachers combined as the strategy combines.
    let generations = match mode {
        PseudoLabels::Replace => vec![teachers],
        PseudoLabels::Accumulate => lineage_by_generation(plan, teachers),
    };
    let pool_sizes = StudyData::sizes(&data.pool);
    let (mut offered, mut labels) = (Vec::new(), Vec::new());
    for teachers in &generations {
        let set = pseudo_labels_of(study, teachers, strategy, selection, &pool_sizes)?;
        offered.extend(set.offered);
        labels.extend(set.kept);
    }
    let pool_truth = data.pool.iter().map(|s| s.truth_labels().map(|t| t.labels.as_slice()));
    let truth: Vec<Option<&[u8]>> = std::iter::repeat_n(pool_truth, generations.len()).flatten().collect();
    let mut record = SelectionRecord::of(&offered, &labels, &truth);

    // One weight for every pseudo-labelled pixel, so `mix` states all generations' share together.
    let (original_pixels, pseudo_pixels) = (labelled_pixels(data.train.iter().map(|l| &l.labels.labels)), labelled_pixels(&labels));
    let weight = pseudo_weight(manifest.study.mix, original_pixels, pseudo_pixels);
    if manifest.study.mix < 1.0 {
        record.training_images += data.train.len();
        let pseudo = f64::from(weight.unwrap_or(0.0)) * pseudo_pixels as f64;
        record.pseudo_share = pseudo / (pseudo + original_pixels as f64).max(f64::MIN_POSITIVE);
    }
    let pool_images = std::iter::repeat_n(data.pool.iter(), generations.len()).flatten();
    let pseudo = pool_images.zip(labels).map(|(scene, l)| {
        let plane = l.len();
        let mut sample = Sample::hard(scene.image.clone(), l);
        sample.weight = weight.map(|w| vec![w; plane]);
        sample
    });
    let samples = if manifest.study.mix < 1.0 { originals().chain(pseudo).collect() } else { pseudo.collect() };
    Ok((samples, Some(record)))
}

/// The teachers of a student and, generation by generation back to generation 0, the teachers
/// of those teachers: one set per earlier generation, newest first.
fn lineage_by_generation<'a>(plan: &'a Plan, teachers: Vec<&'a PlannedRun>) -> Vec<Vec<&'a PlannedRun>> {
    let mut generations = vec![teachers];
    loop {
        let mut earlier: Vec<&PlannedRun> = Vec::new();
        for t in generations.last().into_iter().flatten() {
            for e in plan.teachers_of(t) {
                if !earlier.iter().any(|known| known.id == e.id) {
                    earlier.push(e);
                }
            }
        }
        if earlier.is_empty() {
            return generations;
        }
        generations.push(earlier);
    }
}

/// One generation's pseudo-labels on the pool.
struct PseudoLabelSet {
    /// The teachers' labels combined by the strategy, grown or shrunk.
    offered: Vec<Vec<u8>>,
    /// What the selection kept of them.
    kept: Vec<Vec<u8>>,
}

/// The pool's pseudo-labels from `teachers`.
fn pseudo_labels_of(
    study: &StudyContext<'_>,
    teachers: &[&PlannedRun],
    strategy: Strategy,
    selection: &Selection,
    pool_sizes: &[(usize, usize)],
) -> Result<PseudoLabelSet, StudyError> {
    let StudyContext { manifest, data, dir, .. } = *study;
    let teacher_labels =
        teachers.iter().map(|t| Ok(read_labels(&dir.run(&t.id).pool_labels())?.maps)).collect::<Result<Vec<_>, StudyError>>()?;
    let mut offered = strategy.combine(&teacher_labels, data.classes.len());
    manifest.pseudo_label_dilation.apply(&mut offered, pool_sizes);
    let mut labels = offered.clone();
    // Confidence and hardness are read only when a selection needs them.
    if !selection.is_all() {
        let evidence = teachers.iter().map(|t| pool_evidence(study, t)).collect::<Result<Vec<_>, _>>()?;
        let confidence = mean_of(&evidence.iter().map(|e| &e.confidence).collect::<Vec<_>>(), 1.0 / 255.0);
        let hardness = mean_of(&evidence.iter().map(|e| &e.hardness).collect::<Vec<_>>(), RADIANS_PER_STEP);
        selection.apply(&mut labels, &confidence, &hardness, pool_sizes);
    }
    Ok(PseudoLabelSet { offered, kept: labels })
}

/// A labelled image as a training sample with its source's labels.
fn as_sample(l: &LabelledScene) -> Sample {
    Sample::hard(l.scene.image.clone(), l.labels.labels.clone())
}

/// Samples of `scenes` with their exact labels, for a ceiling run; an error when one has no truth.
fn exact_samples<'a>(scenes: impl Iterator<Item = &'a Scene>, run: &PlannedRun, dir: &StudyDir) -> Result<Vec<Sample>, StudyError> {
    scenes
        .map(|scene| match scene.truth_labels() {
            Some(truth) => Ok(Sample::hard(scene.image.clone(), truth.labels.clone())),
            None => Err(StudyError::Format {
                path: dir.run(&run.id).settings(),
                message: format!("the ceiling trains on exact labels, but image {} has no truth", scene.name),
            }),
        })
        .collect()
}

fn execute(study: &StudyContext<'_>, run: &PlannedRun, observer: &mut dyn Observer) -> Result<RunOutcome, StudyError> {
    let StudyContext { manifest, plan, data, dir, device } = *study;
    let started = Instant::now();
    let run_dir: RunDir = dir.run(&run.id);
    write_json(&run_dir.settings(), run)?;
    let (samples, selection) = training_samples(study, run)?;
    let validation: Vec<Sample> = match run.teaching {
        Teaching::Truth => exact_samples(data.validation.iter().map(|l| &l.scene), run, dir)?,
        Teaching::CrossFit { held_out } => held_out.members(&data.validation, false).map(as_sample).collect(),
        _ => data.validation.iter().map(as_sample).collect(),
    };
    let nets_error = |source| StudyError::Nets { run: run.id.clone(), source };
    // A run killed mid-training continues from its last finished epoch on `--resume`.
    let state = run_dir.training_state();
    let (initial, pretraining) = match plan.teachers_of(run).as_slice() {
        [teacher] if run.continues => {
            (Some(load_network(&teacher.network, &dir.run(&teacher.id).checkpoint(), device).map_err(nets_error)?), None)
        }
        _ if run.network.pretrain.is_some() => {
            let (network, report) = pretrained(study, run, observer)?;
            (Some(network), Some(report))
        }
        _ => (None, None),
    };
    let ema = matches!(run.teaching, Teaching::PseudoLabels { strategy: Strategy::Ema, .. });
    let request =
        TrainingRequest { spec: &run.network, config: &manifest.train, seed: run.seed, train: &samples, val: &validation, device };
    let progress = &mut |p: &Progress| observer.progress(run, p);
    let (network, training) = match initial {
        Some(initial) if ema => {
            let pool: Vec<&echoseg_scene::Image> = data.pool.iter().map(|s| &s.image).collect();
            train_mean_teacher(initial, &request, &manifest.ema, &pool, &state, progress)
        }
        initial => train_resumable(initial, &request, &state, progress),
    }
    .map_err(nets_error)?;
    save_network(&network, &run_dir.checkpoint()).map_err(nets_error)?;
    // The final weights are saved; the per-epoch state is only needed by an unfinished run.
    let _ = std::fs::remove_dir_all(&state);
    let network = network.for_inference();

    let labels_of = |scenes: &[Scene]| -> Result<Vec<Vec<u8>>, StudyError> {
        let images: Vec<_> = scenes.iter().map(|s| &s.image).collect();
        let probs: Vec<Probabilities> =
            predict_tiled(&network, &images, manifest.inference_batch, manifest.tiling, device).map_err(nets_error)?;
        Ok(probs.iter().map(Probabilities::argmax).collect())
    };
    let test_images: Vec<_> = data.test.iter().map(|s| &s.image).collect();
    let test_probabilities =
        predict_tiled(&network, &test_images, manifest.inference_batch, manifest.tiling, device).map_err(nets_error)?;
    let test_labels: Vec<Vec<u8>> = test_probabilities.iter().map(Probabilities::argmax).collect();
    let calibration = test_probabilities
        .par_iter()
        .zip(data.test.par_iter())
        .filter_map(|(p, scene)| Some(Calibration::of_image(&p.values, p.classes, &scene.truth_labels()?.labels)))
        .collect::<Vec<_>>()
        .iter()
        // Summed in image order, so the calibration error is identical run to run.
        .fold(Calibration::default(), |mut a, b| {
            a.merge(b);
            a
        });
    drop(test_probabilities);
    write_labels(&run_dir.test_labels(), &StudyData::sizes(&data.test), &test_labels)?;
    if let Teaching::CrossFit { held_out } = run.teaching {
        crate::analysis::label_issues::write_held_out(
            manifest,
            data,
            device,
            &network,
            held_out,
            &run_dir.held_out_probabilities(),
            &run.id,
        )?;
    } else if run.generation < manifest.study.generations {
        write_pool_evidence(study, &network, &run.id)?;
    }
    let confusion = confusion_against_truth(&test_labels, &data.test, data);
    let test = TruthScores::of(&confusion);
    let collapsed = data.test_has_truth() && confusion.collapsed();
    let fit_miou = fit_miou(&network, &samples, manifest.inference_batch, manifest.tiling, device).map_err(nets_error)?;
    let mut fingerprint = fingerprint_of(&as_slices(&test_labels), &data.test.iter().collect::<Vec<_>>(), &data.classes);
    if let (false, Some(class)) = (data.test_twins.is_empty(), data.cue_class) {
        let twin_labels = labels_of(&data.test_twins)?;
        write_labels(&run_dir.twin_labels(), &StudyData::sizes(&data.test_twins), &twin_labels)?;
        fingerprint.cue_reliance = cue_reliance(&test_labels, &twin_labels, &data.test, &data.test_twins, class);
    }
    if !data.synthetic_test.is_empty() {
        let synthetic_labels = labels_of(&data.synthetic_test)?;
        write_labels(&run_dir.synthetic_labels(), &StudyData::sizes(&data.synthetic_test), &synthetic_labels)?;
        let synthetic = score_set(&synthetic_labels, &data.synthetic_test, data);
        fingerprint.domain_gap = Some(test.miou - synthetic.miou);
    }
    let outcome = RunOutcome {
        id: run.id.clone(),
        test,
        scored: data.test_has_truth(),
        fingerprint,
        calibration_error: calibration.ece(),
        calibration: calibration.ece().map(|_| calibration),
        selection,
        pretraining,
        training,
        fit_miou,
        collapsed,
        seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&run_dir.outcome(), &outcome)?;
    Ok(outcome)
}

/// The run-store id of the pre-training `run`'s model starts from, and its seed.
fn pretraining_id(manifest: &Manifest, run: &PlannedRun, byol: &Valid<ByolConfig>) -> (String, u64) {
    #[derive(Serialize)]
    struct PretrainKey<'a> {
        data: &'a str,
        network: &'a echoseg_nets::NetworkSpec,
        byol: &'a Valid<ByolConfig>,
        seed: u64,
        // Pre-training crops as training does; left out when unset, so older ids stay.
        #[serde(skip_serializing_if = "Option::is_none")]
        crop: Option<usize>,
    }
    let seed = crate::plan::run_seed(manifest.seed, run.repeat, 0, &run.network);
    let key = PretrainKey { data: &manifest.data_key, network: &run.network, byol, seed, crop: manifest.train.crop };
    (format!("pretrain-{}-r{}-{}", run.model, run.repeat, &crate::plan::settings_hash(&key)[..8]), seed)
}

/// The BYOL-pre-trained starting weights of `run`'s model in its repeat: pre-trained once, from
/// the seed its architecture's generation-0 run starts from, and kept in the run store, so every
/// fresh student of the model starts from the same weights.
fn pretrained(study: &StudyContext<'_>, run: &PlannedRun, observer: &mut dyn Observer) -> Result<(Network, ByolReport), StudyError> {
    let StudyContext { manifest, data, dir, device, .. } = *study;
    let byol = manifest
        .byol
        .as_ref()
        .ok_or_else(|| StudyError::Config(format!("{} pre-trains but the manifest has no BYOL settings", run.model)))?;
    let (id, seed) = pretraining_id(manifest, run, byol);
    let store = dir.run(&id);
    let nets_error = |source| StudyError::Nets { run: id.clone(), source };
    if let Ok(report) = read_json::<ByolReport>(&store.pretraining()) {
        return Ok((load_network(&run.network, &store.checkpoint(), device).map_err(nets_error)?, report));
    }
    let pool: Vec<&echoseg_scene::Image> = data.pool.iter().map(|s| &s.image).collect();
    if pool.is_empty() {
        return Err(StudyError::Config(format!("{} pre-trains on the unlabelled pool, which is empty: raise split.pool", run.model)));
    }
    // Killed midway, a pre-training continues from its last finished epoch.
    let state = store.training_state();
    let progress = &mut |p: &Progress| observer.progress(run, p);
    let (network, report) =
        pretrain_byol(&run.network, byol, seed, &pool, manifest.train.crop, device, Some(&state), progress).map_err(nets_error)?;
    std::fs::create_dir_all(store.root()).map_err(|source| StudyError::Io { path: store.root().to_path_buf(), source })?;
    save_network(&network, &store.checkpoint()).map_err(nets_error)?;
    write_json(&store.pretraining(), &report)?;
    let _ = std::fs::remove_dir_all(&state);
    Ok((network, report))
}

/// How well a trained network reproduces the labels it learned from, on its own training
/// images (unlabelled pixels left out): a network far below its labels here has not learned them.
fn fit_miou(
    network: &Network,
    samples: &[Sample],
    batch: usize,
    tiling: Tiling,
    device: &Device,
) -> Result<Option<f64>, echoseg_nets::NetsError> {
    let images: Vec<_> = samples.iter().map(|s| &s.image).collect();
    let predicted = predict_tiled(network, &images, batch, tiling, device)?;
    let mut confusion: Option<Confusion> = None;
    for (p, sample) in predicted.iter().zip(samples) {
        let echoseg_nets::Target::Hard(labels) = &sample.target else { continue };
        confusion.get_or_insert_with(|| Confusion::new(p.classes)).add_maps(labels, &p.argmax());
    }
    Ok(confusion.map(|c| c.miou()))
}

/// The pooled confusion of label maps against the truth of those `scenes` that have it.
fn confusion_against_truth(labels: &[Vec<u8>], scenes: &[Scene], data: &StudyData) -> Confusion {
    let (predicted, truth): (Vec<&[u8]>, Vec<&[u8]>) =
        labels.iter().zip(scenes).filter_map(|(l, s)| s.truth_labels().map(|t| (l.as_slice(), t.labels.as_slice()))).unzip();
    pooled_confusion(&truth, &predicted, data.classes.len())
}

/// Scores label maps against the truth of those `scenes` that have it.
pub fn score_set(labels: &[Vec<u8>], scenes: &[Scene], data: &StudyData) -> TruthScores {
    TruthScores::of(&confusion_against_truth(labels, scenes, data))
}
