//! The study planner: a manifest expands into runs (architectures × strategies × generations × repeats).
//!
//! The first stage of a study: what it asks (the manifest, its strategies, selections and
//! targets), the images it asks it on (data), and the runs that answer it, in the order and
//! rounds they run.

pub mod data;
pub(crate) mod folder_split;
pub mod manifest;
pub mod overview;
pub mod rounds;
pub mod schedule;
pub mod selection;
pub mod strategy;
pub mod targets;

use std::collections::BTreeMap;

use echoseg_nets::{ByolConfig, EmaConfig, NetworkSpec, TrainConfig, Valid};
use serde::Serialize;

use crate::plan::data::{LabelledScene, StudyData};
use crate::plan::manifest::{Manifest, StudentStart};
use crate::plan::selection::Selection;
use crate::plan::strategy::{Lesson, PseudoLabels, Strategy, Treatment};

/// What a run learns from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Teaching {
    /// Generation 0: the mixed-source labels.
    Labels,
    /// The ceiling: generation 0's training and validation images with their exact labels.
    Truth,
    /// Label issues: generation 0's labels without the images `held_out` names, which this
    /// run's network then scores out of sample.
    CrossFit {
        /// Which labelled images the run neither learns from nor validates on.
        held_out: HeldOut,
    },
    /// Later generations: pseudo-labels of the runs at these plan indices (one for `self` and
    /// `cross`, the other architectures for `ensemble` and `consensus`), combined by the strategy.
    PseudoLabels {
        /// Indices of the teacher runs in the plan.
        teachers: Vec<usize>,
        /// The strategy that chose the teachers and combines their labels.
        strategy: Strategy,
        /// Which of the combined labels the student learns from.
        selection: Selection,
        /// Whether the student also learns the pseudo-labels of every earlier generation of its
        /// lineage (`accumulate`, from generation 2).
        pseudo_labels: PseudoLabels,
    },
}

/// One training run of the plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedRun {
    /// Stable id from the run's own settings and its teacher's id.
    pub id: String,
    /// Generation (0 = trained on the source labels).
    pub generation: u32,
    /// What it learns from.
    pub teaching: Teaching,
    /// The student network.
    pub network: NetworkSpec,
    /// The model's name in tables and the report (`unet`, `unet+byol`).
    pub model: String,
    /// Repeat index (0-based).
    pub repeat: u32,
    /// Seed of this run's initialisation and shuffling.
    pub seed: u64,
    /// True for the one run per architecture that continues the strategy's chain; pairwise
    /// agreement compares these.
    pub chain: bool,
    /// True when the student starts from its teacher's weights (`study.student = "continue"`
    /// and a teacher of the student's own architecture).
    pub continues: bool,
}

impl PlannedRun {
    /// The strategy that teaches it, `None` at generation 0.
    pub fn strategy(&self) -> Option<Strategy> {
        match &self.teaching {
            Teaching::Labels | Teaching::Truth | Teaching::CrossFit { .. } => None,
            Teaching::PseudoLabels { strategy, .. } => Some(*strategy),
        }
    }

    /// What it learns from: the labels, or its strategy with its selection's name.
    pub fn treatment(&self) -> Treatment {
        match &self.teaching {
            Teaching::Labels => Treatment::Labels,
            Teaching::Truth => Treatment::Ceiling,
            Teaching::CrossFit { .. } => Treatment::CrossFit,
            Teaching::PseudoLabels { strategy, selection, pseudo_labels, .. } => {
                Treatment::Pseudo { strategy: *strategy, selection: selection.name.clone(), pseudo_labels: *pseudo_labels }
            }
        }
    }
}

/// Joins a committee's model names in run ids (`-from-fcn&dilated`): `+` already belongs to
/// model names (`unet+byol`), and `&` can appear neither there nor break a directory name.
pub const COMMITTEE_SEPARATOR: &str = "&";

/// How a run id names the teachers whose models are `models`: the model, or the committee
/// joined by [`COMMITTEE_SEPARATOR`]; empty for none.
pub fn committee_name(models: &[&str]) -> String {
    models.join(COMMITTEE_SEPARATOR)
}

/// All runs of a study, teachers before their students.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// The runs in execution order.
    pub runs: Vec<PlannedRun>,
}

impl Plan {
    /// The runs whose pseudo-labels `run` learns from (none at generation 0).
    pub fn teachers_of(&self, run: &PlannedRun) -> Vec<&PlannedRun> {
        match &run.teaching {
            Teaching::Labels | Teaching::Truth | Teaching::CrossFit { .. } => Vec::new(),
            Teaching::PseudoLabels { teachers, .. } => teachers.iter().filter_map(|&t| self.runs.get(t)).collect(),
        }
    }

    /// The models of the runs `run` learns from, one per teacher (none at generation 0).
    pub fn teacher_models(&self, run: &PlannedRun) -> Vec<&str> {
        self.teachers_of(run).into_iter().map(|t| t.model.as_str()).collect()
    }

    /// The teachers' models as the `teacher` column shows them: `fcn`, or `fcn+dilated` for a
    /// committee; empty at generation 0. For readers only: `+` also joins a model's pre-training
    /// (`unet+byol`), so code that needs the teachers asks [`Plan::teacher_models`].
    pub fn teacher_name(&self, run: &PlannedRun) -> String {
        self.teacher_models(run).join("+")
    }

    /// How many runs the results tables hold: all but the cross-fitting runs, which come last.
    pub fn tabled(&self) -> usize {
        self.runs.iter().take_while(|r| !matches!(r.teaching, Teaching::CrossFit { .. })).count()
    }

    /// The ceiling run of `run`'s architecture (without pre-training) and repeat.
    pub fn ceiling_of(&self, run: &PlannedRun) -> Option<usize> {
        let plain = NetworkSpec { pretrain: None, ..run.network };
        self.runs.iter().position(|b| b.teaching == Teaching::Truth && b.repeat == run.repeat && b.network == plain)
    }

    /// The cross-fitting runs, for label issues.
    pub fn cross_fits(&self) -> &[PlannedRun] {
        &self.runs[self.tabled()..]
    }

    /// The plan of the runs `keep` marks, in the same order, teachers renumbered; every kept
    /// run's teachers must be kept too.
    pub fn retain(self, keep: &[bool]) -> Plan {
        let mut index = vec![usize::MAX; self.runs.len()];
        let mut runs = Vec::new();
        for (i, run) in self.runs.into_iter().enumerate().filter(|(i, _)| keep[*i]) {
            index[i] = runs.len();
            runs.push(run);
        }
        for run in &mut runs {
            if let Teaching::PseudoLabels { teachers, .. } = &mut run.teaching {
                teachers.iter_mut().for_each(|t| *t = index[*t]);
            }
        }
        Plan { runs }
    }
}

/// Which labelled images a cross-fitting run holds out, to score them out of sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum HeldOut {
    /// Fold `fold` (0-based) of `folds`: images dealt out in turn ([`held_out`]).
    Fold {
        /// The held-out fold, 0-based.
        fold: u32,
        /// How many folds.
        folds: u32,
    },
    /// Every image of one source (its index in the manifest): the run learns from the other
    /// sources' labels only, so a bias the held-out source draws on every image is not in them.
    Source(usize),
}

impl HeldOut {
    /// The members of `set` (the training or the validation images) it holds out (`inside`),
    /// or those the run learns from.
    pub fn members(self, set: &[LabelledScene], inside: bool) -> impl Iterator<Item = &LabelledScene> {
        set.iter().enumerate().filter(move |(i, l)| self.holds(*i, l) == inside).map(|(_, l)| l)
    }

    /// Whether `labelled`, at `index` of its set, is held out.
    fn holds(self, index: usize, labelled: &LabelledScene) -> bool {
        match self {
            HeldOut::Fold { fold, folds } => held_out(index, fold, folds),
            HeldOut::Source(source) => labelled.source == source,
        }
    }
}

/// Whether the labelled image at `index` (of the training or of the validation images) is in
/// fold `fold` of `folds`. Images are dealt out in turn, so each source's images spread over
/// every fold as evenly as they can.
pub fn held_out(index: usize, fold: u32, folds: u32) -> bool {
    index % folds.max(1) as usize == fold as usize
}

/// Stable 64-bit hash (FNV-1a) of a value's JSON form, as 16 hex digits.
pub fn settings_hash<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).unwrap_or_default();
    format!("{:016x}", echoseg_scene::rng::fnv1a(json.as_bytes()))
}

#[derive(Serialize)]
struct Gen0Key<'a> {
    data: &'a str,
    network: &'a NetworkSpec,
    train: &'a Valid<TrainConfig>,
    repeat: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    byol: Option<&'a Valid<ByolConfig>>,
    // Only a tile other than the default is in the key, so ids from before the option stay.
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_tile: Option<usize>,
}

#[derive(Serialize)]
struct CeilingKey<'a> {
    ceiling: bool,
    data: &'a str,
    network: &'a NetworkSpec,
    train: &'a Valid<TrainConfig>,
    repeat: u32,
    // Only a tile other than the default is in the key, so ids from before the option stay.
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_tile: Option<usize>,
}

#[derive(Serialize)]
struct CrossFitKey<'a> {
    fold: u32,
    folds: u32,
    data: &'a str,
    network: &'a NetworkSpec,
    train: &'a Valid<TrainConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_tile: Option<usize>,
}

#[derive(Serialize)]
struct SourceOutKey<'a> {
    without_source: &'a str,
    data: &'a str,
    network: &'a NetworkSpec,
    train: &'a Valid<TrainConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_tile: Option<usize>,
}

#[derive(Serialize)]
struct PseudoKey<'a> {
    teachers: Vec<&'a str>,
    strategy: Strategy,
    network: &'a NetworkSpec,
    train: &'a Valid<TrainConfig>,
    mix: f32,
    // Left out when empty, so ids of studies without it stay what they were.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    dilate_pseudo_labels: &'a BTreeMap<String, f32>,
    selection: &'a Selection,
    // Left out for `replace`, so ids of studies without the option stay what they were.
    #[serde(skip_serializing_if = "is_replace")]
    pseudo_labels: PseudoLabels,
    repeat: u32,
    // Left out when false, so the ids of fresh students stay what they were before the option existed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    continues: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ema: Option<&'a Valid<EmaConfig>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    byol: Option<&'a Valid<ByolConfig>>,
    // Only a tile other than the default is in the key, so ids from before the option stay.
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_tile: Option<usize>,
}

fn is_replace(mode: &PseudoLabels) -> bool {
    *mode == PseudoLabels::Replace
}

/// The seed of a run; a pre-trained model shares its architecture's seeds, so the two differ
/// only by the pre-training.
pub fn run_seed(manifest_seed: u64, repeat: u32, generation: u32, spec: &NetworkSpec) -> u64 {
    let stream = format!("run/{repeat}/{generation}/{}", spec.architecture);
    echoseg_scene::Rng::new(manifest_seed, &stream).next_u64()
}

fn readable_id(generation: u32, treatment: &Treatment, spec: &NetworkSpec, teachers: &[&PlannedRun], repeat: u32, hash: &str) -> String {
    let names: Vec<&str> = teachers.iter().map(|t| t.model.as_str()).collect();
    let from = if names.is_empty() { String::new() } else { format!("-from-{}", committee_name(&names)) };
    format!("g{generation}-{}-{}{from}-r{repeat}-{}", id_safe(&treatment.id_label()), spec.name(), &hash[..8])
}

/// `text` (a selection's or a source's name, free text) with every character a directory name
/// should not hold replaced by `_`: run ids are directory names.
fn id_safe(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_+".contains(c) { c } else { '_' }).collect()
}

/// Expands a manifest into its runs for its data: ceiling runs when the manifest asks for them
/// (`study.ceiling`, on by default) and the data has exact labels for every image generation 0
/// learns from (always in the procedural world; in a folder, when masks/TRUTH covers them).
pub fn plan(manifest: &Manifest, data: &StudyData) -> Plan {
    plan_repeats(manifest, data, manifest.study.repeats)
}

/// The plan of `manifest` with `repeats` seeds instead of its own: a run's id and seed depend on
/// its repeat, not on how many there are, so the first repeats are the same runs either way.
pub fn plan_repeats(manifest: &Manifest, data: &StudyData, repeats: u32) -> Plan {
    let mut runs: Vec<PlannedRun> = Vec::new();
    let every = Selection::all();
    for repeat in 0..repeats {
        let gen0: Vec<usize> = manifest
            .networks
            .iter()
            .map(|spec| {
                let byol = spec.pretrain.and(manifest.byol.as_ref());
                let key = Gen0Key {
                    data: &manifest.data_key,
                    network: spec,
                    train: &manifest.train,
                    repeat,
                    byol,
                    inference_tile: manifest.inference_tile_key(),
                };
                let hash = settings_hash(&key);
                runs.push(PlannedRun {
                    id: readable_id(0, &Treatment::Labels, spec, &[], repeat, &hash),
                    generation: 0,
                    teaching: Teaching::Labels,
                    network: *spec,
                    model: spec.name(),
                    repeat,
                    seed: run_seed(manifest.seed, repeat, 0, spec),
                    chain: true,
                    continues: false,
                });
                runs.len() - 1
            })
            .collect();
        let treatments = manifest.study.strategies.iter().flat_map(|&s| {
            let selections: Vec<&Selection> = if s.takes_selections() { manifest.selections.iter().collect() } else { vec![&every] };
            selections.into_iter().map(move |sel| (s, sel))
        });
        for (strategy, selection) in treatments {
            // chains[m][a] is the latest run of architecture a in this strategy's (and selection's)
            // chain of mode m; generation 1 is one run for every mode ([`PseudoLabels::at`]).
            let mut chains = vec![gen0.clone(); manifest.pseudo_labels.len()];
            for generation in 1..=manifest.study.generations {
                for (m, &mode) in manifest.pseudo_labels.iter().enumerate() {
                    let shared = (0..m).find(|&earlier| manifest.pseudo_labels[earlier].at(generation) == mode.at(generation));
                    chains[m] = match shared {
                        Some(earlier) => chains[earlier].clone(),
                        None => {
                            let step = ChainStep { strategy, selection, pseudo_labels: mode.at(generation), generation, repeat };
                            next_generation(manifest, &step, &chains[m], &mut runs)
                        }
                    };
                }
            }
        }
        if manifest.study.ceiling && data.truth_covers_training() {
            ceilings(manifest, repeat, &mut runs);
        }
    }
    // Last, so that every other run keeps its plan index and the tables take the runs before them.
    if let Some(settings) = &manifest.label_issues {
        cross_fits(manifest, settings.folds, &mut runs);
        if settings.leave_source_out {
            source_cross_fits(manifest, &mut runs);
        }
    }
    Plan { runs }
}

/// What one generation of one chain learns: its strategy, selection and mode, at a generation
/// and repeat.
struct ChainStep<'a> {
    strategy: Strategy,
    selection: &'a Selection,
    pseudo_labels: PseudoLabels,
    generation: u32,
    repeat: u32,
}

/// Plans every architecture's students of `step.generation` after the chain's latest runs
/// `chain` (per architecture), and returns the chain's latest runs after them.
fn next_generation(manifest: &Manifest, step: &ChainStep<'_>, chain: &[usize], runs: &mut Vec<PlannedRun>) -> Vec<usize> {
    let ChainStep { strategy, selection, pseudo_labels, generation, repeat } = *step;
    let mut next = chain.to_vec();
    for (a, spec) in manifest.networks.iter().enumerate() {
        // Without the cross matrix only the chain's lesson is trained.
        let lessons = strategy.lessons(a, generation, chain).into_iter().filter(|l| l.chain || manifest.study.cross_matrix);
        for Lesson { teachers, chain: in_chain } in lessons {
            // An ema run always goes on from its predecessor: student and teacher start from its weights.
            let continues = strategy == Strategy::Ema
                || (manifest.study.student == StudentStart::Continue && matches!(teachers.as_slice(), [t] if runs[*t].network == *spec));
            let key = PseudoKey {
                continues,
                teachers: teachers.iter().map(|&t| runs[t].id.as_str()).collect(),
                strategy,
                network: spec,
                train: &manifest.train,
                mix: manifest.study.mix,
                dilate_pseudo_labels: &manifest.study.dilate_pseudo_labels,
                selection,
                pseudo_labels,
                repeat,
                ema: (strategy == Strategy::Ema).then_some(&manifest.ema),
                byol: spec.pretrain.and(manifest.byol.as_ref()),
                inference_tile: manifest.inference_tile_key(),
            };
            let hash = settings_hash(&key);
            let teacher_runs: Vec<&PlannedRun> = teachers.iter().map(|&t| &runs[t]).collect();
            let treatment = Treatment::Pseudo { strategy, selection: selection.name.clone(), pseudo_labels };
            let id = readable_id(generation, &treatment, spec, &teacher_runs, repeat, &hash);
            runs.push(PlannedRun {
                id,
                generation,
                teaching: Teaching::PseudoLabels { teachers, strategy, selection: selection.clone(), pseudo_labels },
                network: *spec,
                model: spec.name(),
                repeat,
                seed: run_seed(manifest.seed, repeat, generation, spec),
                chain: in_chain,
                continues,
            });
            if in_chain {
                next[a] = runs.len() - 1;
            }
        }
    }
    next
}

/// Each plain architecture once per fold (the first repeat's seed): label issues need every
/// labelled image scored once by every architecture, not once per repeat.
fn cross_fits(manifest: &Manifest, folds: u32, runs: &mut Vec<PlannedRun>) {
    for spec in plain_architectures(manifest) {
        for fold in 0..folds {
            let key = CrossFitKey {
                fold,
                folds,
                data: &manifest.data_key,
                network: &spec,
                train: &manifest.train,
                inference_tile: manifest.inference_tile_key(),
            };
            let hash = settings_hash(&key);
            let id = format!("crossfit-{}-fold{}of{folds}-{}", spec.name(), fold + 1, &hash[..8]);
            runs.push(cross_fit(manifest, spec, id, HeldOut::Fold { fold, folds }));
        }
    }
}

/// Each plain architecture once per source, trained on the other sources' labels (the first
/// repeat's seed): the witnesses that can see a bias one source draws the same way on every image.
fn source_cross_fits(manifest: &Manifest, runs: &mut Vec<PlannedRun>) {
    for spec in plain_architectures(manifest) {
        for (source, s) in manifest.sources.iter().enumerate() {
            let key = SourceOutKey {
                without_source: &s.name,
                data: &manifest.data_key,
                network: &spec,
                train: &manifest.train,
                inference_tile: manifest.inference_tile_key(),
            };
            let hash = settings_hash(&key);
            let id = format!("crossfit-{}-without-{}-{}", spec.name(), id_safe(&s.name), &hash[..8]);
            runs.push(cross_fit(manifest, spec, id, HeldOut::Source(source)));
        }
    }
}

/// A cross-fitting run of `spec` holding out `held_out`, with the first repeat's generation-0 seed.
fn cross_fit(manifest: &Manifest, spec: NetworkSpec, id: String, held_out: HeldOut) -> PlannedRun {
    PlannedRun {
        id,
        generation: 0,
        teaching: Teaching::CrossFit { held_out },
        network: spec,
        model: spec.name(),
        repeat: 0,
        seed: run_seed(manifest.seed, 0, 0, &spec),
        chain: false,
        continues: false,
    }
}

/// The manifest's architectures without pre-training, each once, in manifest order.
fn plain_architectures(manifest: &Manifest) -> Vec<NetworkSpec> {
    let mut specs: Vec<NetworkSpec> = Vec::new();
    for spec in &manifest.networks {
        let plain = NetworkSpec { pretrain: None, ..*spec };
        if !specs.contains(&plain) {
            specs.push(plain);
        }
    }
    specs
}

/// The ceiling runs of `repeat`: one per architecture (a pre-trained model's is its plain
/// architecture's), with the seed of its generation-0 run.
fn ceilings(manifest: &Manifest, repeat: u32, runs: &mut Vec<PlannedRun>) {
    for spec in plain_architectures(manifest) {
        let key = CeilingKey {
            ceiling: true,
            data: &manifest.data_key,
            network: &spec,
            train: &manifest.train,
            repeat,
            inference_tile: manifest.inference_tile_key(),
        };
        runs.push(PlannedRun {
            id: readable_id(0, &Treatment::Ceiling, &spec, &[], repeat, &settings_hash(&key)),
            generation: 0,
            teaching: Teaching::Truth,
            network: spec,
            model: spec.name(),
            repeat,
            seed: run_seed(manifest.seed, repeat, 0, &spec),
            chain: false,
            continues: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_committee_of_pretrained_models_names_each_teacher() {
        let text = "[[sources]]\nkind = \"manual\"\nimages = 4\n[nets]\narchitectures = [\"unet\", \"unet+byol\", \"fcn\"]\n\
                    [study]\nstrategies = [\"ensemble\"]\n";
        let manifest = crate::plan::manifest::parse(Path::new("t.toml"), text).unwrap();
        let plan = planned(&manifest);
        let student = plan.runs.iter().find(|r| r.generation == 1 && r.model == "unet").unwrap();
        assert_eq!(plan.teacher_models(student), ["unet+byol", "fcn"]);
        assert_eq!(plan.teacher_name(student), "unet+byol+fcn");
        assert!(student.id.starts_with("g1-ensemble-unet-from-unet+byol&fcn-r0-"), "{}", student.id);
        assert_eq!(student.treatment(), Treatment::every_label(Strategy::Ensemble));
        assert_eq!(plan.runs[0].treatment(), Treatment::Labels);
    }

    #[test]
    fn every_architecture_gets_a_ceiling_with_its_generation_zero_seed_and_pretraining_shares_it() {
        let text = "[[sources]]\nkind = \"manual\"\nimages = 4\n[nets]\narchitectures = [\"unet\", \"unet+byol\", \"fcn\"]\n\
                    [study]\nrepeats = 2\n";
        let manifest = crate::plan::manifest::parse(Path::new("t.toml"), text).unwrap();
        let plan = planned(&manifest);
        let ceilings: Vec<&PlannedRun> = plan.runs.iter().filter(|r| r.teaching == Teaching::Truth).collect();
        // unet and unet+byol are one architecture: two ceilings per repeat.
        assert_eq!(ceilings.len(), 4);
        for c in &ceilings {
            assert_eq!((c.generation, c.chain, c.treatment()), (0, false, Treatment::Ceiling));
            assert!(c.id.starts_with("g0-ceiling-"), "{}", c.id);
            let gen0 = plan.runs.iter().find(|r| r.teaching == Teaching::Labels && r.repeat == c.repeat && r.network == c.network).unwrap();
            assert_eq!(c.seed, gen0.seed, "the ceiling starts where generation 0 starts");
        }
        let off = crate::plan::manifest::parse(Path::new("t.toml"), &format!("{text}ceiling = false\n")).unwrap();
        assert!(plan_has_no_ceiling(&off));
    }

    #[test]
    fn accumulating_chains_share_generation_one_and_leave_the_replacing_runs_as_they_were() {
        let text = "[[sources]]\nkind = \"manual\"\nimages = 4\n[nets]\narchitectures = [\"fcn\", \"dilated\"]\n\
                    [study]\ngenerations = 3\nceiling = false\n";
        let replacing = planned(&crate::plan::manifest::parse(Path::new("t.toml"), text).unwrap());
        let both = format!("{text}pseudo_labels = [\"replace\", \"accumulate\"]\n");
        let plan = planned(&crate::plan::manifest::parse(Path::new("t.toml"), &both).unwrap());
        // The replacing runs keep their ids; accumulate adds generations 2 and 3 only.
        let ids = |p: &Plan, mode: PseudoLabels| -> Vec<String> {
            p.runs.iter().filter(|r| r.treatment().pseudo_labels() == mode).map(|r| r.id.clone()).collect()
        };
        assert_eq!(ids(&plan, PseudoLabels::Replace), ids(&replacing, PseudoLabels::Replace));
        let accumulating: Vec<&PlannedRun> =
            plan.runs.iter().filter(|r| r.treatment().pseudo_labels() == PseudoLabels::Accumulate).collect();
        // 2 strategies × 2 architectures × generations 2 and 3.
        assert_eq!(accumulating.len(), 8);
        assert!(accumulating.iter().all(|r| r.generation >= 2 && r.id.contains(".accumulate-")), "{accumulating:#?}");
        // An accumulating student of generation 2 learns from the shared generation-1 run.
        let student =
            accumulating.iter().find(|r| r.generation == 2 && r.model == "fcn" && r.strategy() == Some(Strategy::SelfTraining)).unwrap();
        let teacher = plan.teachers_of(student)[0];
        assert_eq!((teacher.generation, teacher.treatment().pseudo_labels()), (1, PseudoLabels::Replace));
        assert_eq!(PseudoLabels::Accumulate.pool_copies(3), 3);
    }

    fn planned(manifest: &Manifest) -> Plan {
        plan(manifest, &StudyData::load(manifest).unwrap())
    }

    fn plan_has_no_ceiling(manifest: &Manifest) -> bool {
        planned(manifest).runs.iter().all(|r| r.teaching != Teaching::Truth)
    }
}
