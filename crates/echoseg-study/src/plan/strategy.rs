//! Strategies: who teaches whom after generation 0, how the teachers' labels combine, and the
//! treatment a configuration received (generation 0's labels, or a strategy with a selection of
//! its pseudo-labels).

use echoseg_agree::{StapleConfig, staple};
use echoseg_nets::IGNORE;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Who teaches whom in generations after the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// A model learns from its own outputs.
    #[serde(rename = "self")]
    SelfTraining,
    /// A model learns from another architecture's outputs.
    Cross,
    /// A model learns from the per-pixel majority of the other architectures (ties carry no loss).
    Ensemble,
    /// A model learns from the STAPLE consensus of the other architectures.
    Consensus,
    /// A model keeps learning from the labels plus the pool, the pool's targets coming online
    /// from a moving-average teacher of itself (mean teacher).
    Ema,
}

impl Strategy {
    /// The manifest and report name.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::SelfTraining => "self",
            Strategy::Cross => "cross",
            Strategy::Ensemble => "ensemble",
            Strategy::Consensus => "consensus",
            Strategy::Ema => "ema",
        }
    }
}

impl Strategy {
    /// Every strategy, in manifest order.
    pub const ALL: [Strategy; 5] = [Strategy::SelfTraining, Strategy::Cross, Strategy::Ensemble, Strategy::Consensus, Strategy::Ema];

    /// The strategy of a manifest or table name.
    pub fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The runs architecture `student` trains at `generation` (from 1), one per lesson, each
    /// with its teachers; `chain[a]` is the latest run of architecture `a` in this strategy's chain.
    pub fn lessons(self, student: usize, generation: u32, chain: &[usize]) -> Vec<Lesson> {
        let archs = chain.len();
        let one = |teacher: usize, chain: bool| Lesson { teachers: vec![teacher], chain };
        match self {
            // A model learns from itself; a mean teacher goes on from its own predecessor.
            Strategy::SelfTraining | Strategy::Ema => vec![one(chain[student], true)],
            // Every other architecture teaches at generation 1 (the full teacher × student
            // matrix); afterwards the chain rotates, a ← a+1.
            Strategy::Cross if generation == 1 => (1..archs).map(|k| one(chain[(student + k) % archs], k == 1)).collect(),
            Strategy::Cross => vec![one(chain[(student + 1) % archs], true)],
            // The other architectures teach together, as one committee.
            Strategy::Ensemble | Strategy::Consensus => {
                vec![Lesson { teachers: (1..archs).map(|k| chain[(student + k) % archs]).collect(), chain: true }]
            }
        }
    }

    /// Whether the study's selections apply: `ema` chooses its own pixels (a confidence
    /// threshold), so it runs once, keeping every pseudo-label.
    pub fn takes_selections(self) -> bool {
        match self {
            Strategy::SelfTraining | Strategy::Cross | Strategy::Ensemble | Strategy::Consensus => true,
            Strategy::Ema => false,
        }
    }

    /// The pseudo-labels a student learns from, per pool image, from its teachers' pool labels
    /// (`teachers[t][image]`): a single teacher's as they are; `ensemble`: the per-pixel majority,
    /// with pixels where no class has a strict majority set to [`IGNORE`] (no loss), since a split
    /// committee gives no evidence; `consensus`: STAPLE's consensus over the teachers.
    pub fn combine(self, teachers: &[Vec<Vec<u8>>], classes: usize) -> Vec<Vec<u8>> {
        if teachers.len() == 1 {
            return teachers[0].clone();
        }
        let images = teachers[0].len();
        let maps_of = |i: usize| teachers.iter().map(|t| t[i].as_slice()).collect::<Vec<&[u8]>>();
        // STAPLE estimates each teacher's per-class performance over the whole pool, then labels
        // every image with it. It fails only on malformed input, which the store's own files are
        // not; the majority stands in rather than lose the run.
        let estimate = match self {
            Strategy::Consensus => {
                let raters: Vec<Vec<&[u8]>> = teachers.iter().map(|t| t.iter().map(Vec::as_slice).collect()).collect();
                staple(&raters, classes, &StapleConfig::default()).ok()
            }
            // Only committees have several teachers; any other strategy given several takes their majority.
            Strategy::Ensemble | Strategy::SelfTraining | Strategy::Cross | Strategy::Ema => None,
        };
        (0..images)
            .into_par_iter()
            .map(|i| match &estimate {
                Some(estimate) => estimate.consensus_map(&maps_of(i)),
                None => majority(&maps_of(i), classes),
            })
            .collect()
    }

    /// Images a student of this strategy trains on per epoch, with `labelled` training images,
    /// `pool` pool images and the pseudo-labels' share `mix` of the loss weight.
    pub fn training_images(self, labelled: usize, pool: usize, mix: f32) -> usize {
        match self {
            // A mean teacher pairs every labelled batch with as many pool images.
            Strategy::Ema => 2 * labelled,
            // With a mix below 1 the original labels are trained on beside the pool's.
            Strategy::SelfTraining | Strategy::Cross | Strategy::Ensemble | Strategy::Consensus if mix < 1.0 => labelled + pool,
            Strategy::SelfTraining | Strategy::Cross | Strategy::Ensemble | Strategy::Consensus => pool,
        }
    }
}

/// One student a strategy trains in a generation: the runs that teach it (indices into the plan)
/// and whether it continues the strategy's chain, which the next generation learns from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lesson {
    /// The teacher runs; several form a committee.
    pub teachers: Vec<usize>,
    /// True for the one student per architecture that continues the chain.
    pub chain: bool,
}

/// The per-pixel strict majority of `maps`, [`IGNORE`] where no class has one.
fn majority(maps: &[&[u8]], classes: usize) -> Vec<u8> {
    echoseg_agree::plurality(maps, classes).into_iter().map(|(c, votes)| if 2 * votes > maps.len() { c } else { IGNORE }).collect()
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a later generation's student learns besides the labelled images: the pseudo-labels of
/// the generation before it only, or those of every earlier generation of its lineage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PseudoLabels {
    /// Each generation's pseudo-labels replace the last (the pool labelled once, by its teachers).
    #[default]
    Replace,
    /// Each generation's pseudo-labels join those of every earlier one (the pool labelled once
    /// per earlier generation), `mix` stating their share together.
    Accumulate,
}

impl PseudoLabels {
    /// Both modes, in manifest order.
    pub const ALL: [PseudoLabels; 2] = [PseudoLabels::Replace, PseudoLabels::Accumulate];

    /// The manifest and table name.
    pub fn name(self) -> &'static str {
        match self {
            PseudoLabels::Replace => "replace",
            PseudoLabels::Accumulate => "accumulate",
        }
    }

    /// The mode of a manifest or table name.
    pub fn from_name(name: &str) -> Option<PseudoLabels> {
        PseudoLabels::ALL.into_iter().find(|m| m.name() == name)
    }

    /// How many pseudo-labelled copies of the pool a student of `generation` learns from: one, or
    /// one per earlier generation when accumulating.
    pub fn pool_copies(self, generation: u32) -> usize {
        match self.at(generation) {
            PseudoLabels::Replace => 1,
            PseudoLabels::Accumulate => generation as usize,
        }
    }

    /// The mode a student of `generation` learns in: generation 1 has only generation 0's
    /// pseudo-labels to learn, so both modes share its runs, which count as `replace`.
    pub fn at(self, generation: u32) -> PseudoLabels {
        if generation <= 1 { PseudoLabels::Replace } else { self }
    }
}

/// The `strategy` column's value for generation 0, which learns from the source labels.
pub const LABELS: &str = "labels";
/// The `strategy` column's value for the ceiling: generation 0's images with exact labels.
pub const CEILING: &str = "ceiling";
/// The run-id label of the cross-fitting runs behind label issues (never in the results tables).
pub const CROSS_FIT: &str = "crossfit";
/// The `selection` column's value for a treatment that keeps every pseudo-label.
pub const EVERY_LABEL: &str = "all";

/// What a configuration learned from: generation 0's source labels, or a strategy's
/// pseudo-labels with the selection that chose among them and the mode that kept or replaced
/// earlier generations'. Tables write it as the columns `strategy`, `selection` and, where some
/// row accumulates, `pseudo_labels`; readers see it as `self`, `self + confidence0.9` or
/// `self, accumulated`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Treatment {
    /// Generation 0: the mixed-source labels.
    Labels,
    /// The ceiling: generation 0's images and seeds with exact labels, which separates what the
    /// labels caused from what the architecture does anyway.
    Ceiling,
    /// Generation 0's labels without the images it holds out (a fold or a source), which it then scores for label issues.
    CrossFit,
    /// A later generation: pseudo-labels by `strategy`, of which `selection` kept some.
    Pseudo {
        /// Who taught.
        strategy: Strategy,
        /// The selection's name (`all` when every pseudo-label is kept).
        selection: String,
        /// Whether the pseudo-labels of earlier generations stay (`accumulate`).
        pseudo_labels: PseudoLabels,
    },
}

impl Treatment {
    /// The treatment of `strategy` that keeps every pseudo-label (plain `self`, `cross`, …).
    pub fn every_label(strategy: Strategy) -> Self {
        Treatment::Pseudo { strategy, selection: EVERY_LABEL.to_string(), pseudo_labels: PseudoLabels::Replace }
    }

    /// The strategy, `None` for generation 0's labels and the ceiling.
    pub fn strategy(&self) -> Option<Strategy> {
        match self {
            Treatment::Labels | Treatment::Ceiling | Treatment::CrossFit => None,
            Treatment::Pseudo { strategy, .. } => Some(*strategy),
        }
    }

    /// The `strategy` column: `labels`, `ceiling` or the strategy's name.
    pub fn strategy_column(&self) -> &'static str {
        match self {
            Treatment::Labels => LABELS,
            Treatment::Ceiling => CEILING,
            Treatment::CrossFit => CROSS_FIT,
            Treatment::Pseudo { strategy, .. } => strategy.name(),
        }
    }

    /// The `selection` column: `all` for generation 0 and the ceiling, which learn from every label.
    pub fn selection_column(&self) -> &str {
        match self {
            Treatment::Labels | Treatment::Ceiling | Treatment::CrossFit => EVERY_LABEL,
            Treatment::Pseudo { selection, .. } => selection,
        }
    }

    /// The `pseudo_labels` column: `replace` for every treatment but an accumulating one. The
    /// tables have the column only where some row accumulates, so studies without it keep their tables.
    pub fn pseudo_labels(&self) -> PseudoLabels {
        match self {
            Treatment::Pseudo { pseudo_labels, .. } => *pseudo_labels,
            Treatment::Labels | Treatment::Ceiling | Treatment::CrossFit => PseudoLabels::Replace,
        }
    }

    /// The same treatment with pseudo-labels in `mode` (generation 0 and the ceiling have none to keep).
    pub fn with_pseudo_labels(&self, mode: PseudoLabels) -> Treatment {
        match self {
            Treatment::Pseudo { strategy, selection, .. } => {
                Treatment::Pseudo { strategy: *strategy, selection: selection.clone(), pseudo_labels: mode }
            }
            other => other.clone(),
        }
    }

    /// What a chain of this treatment learned at `generation`: the labels at generation 0, and at
    /// generation 1, shared by both modes, `replace` ([`PseudoLabels::at`]).
    pub fn at_generation(&self, generation: u32) -> Treatment {
        if generation == 0 { Treatment::Labels } else { self.with_pseudo_labels(self.pseudo_labels().at(generation)) }
    }

    /// True when every label is learned from (generation 0, or a selection of `all`).
    pub fn keeps_every_label(&self) -> bool {
        let selection = self.selection_column();
        selection == EVERY_LABEL || selection.is_empty()
    }

    /// The treatment two table columns describe (and the `pseudo_labels` column, `replace` where a
    /// table has none); `None` for a strategy name echoseg does not know.
    pub fn from_columns(strategy: &str, selection: &str, pseudo_labels: PseudoLabels) -> Option<Treatment> {
        match strategy {
            LABELS => return Some(Treatment::Labels),
            CEILING => return Some(Treatment::Ceiling),
            CROSS_FIT => return Some(Treatment::CrossFit),
            _ => {}
        }
        let selection = if selection.is_empty() { EVERY_LABEL } else { selection };
        Some(Treatment::Pseudo { strategy: Strategy::from_name(strategy)?, selection: selection.to_string(), pseudo_labels })
    }

    /// The part of a run id that names the treatment: `self`, `self.confidence0.9`, or
    /// `self.accumulate` for a chain that accumulates.
    pub fn id_label(&self) -> String {
        let mut label = self.strategy_column().to_string();
        if !self.keeps_every_label() {
            label = format!("{label}.{}", self.selection_column());
        }
        if self.pseudo_labels() == PseudoLabels::Accumulate {
            label.push_str(".accumulate");
        }
        label
    }
}

/// Treatments order by their column names (`strategy`, `selection`, then replace before
/// accumulate), the order in which the tables list them.
impl Ord for Treatment {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.strategy_column(), self.selection_column(), self.pseudo_labels()).cmp(&(
            other.strategy_column(),
            other.selection_column(),
            other.pseudo_labels(),
        ))
    }
}

impl PartialOrd for Treatment {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Treatment {
    /// `self` when every pseudo-label is kept, `self + confidence0.9` for a selection of them,
    /// `self, accumulated` for a chain that accumulates.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.keeps_every_label() {
            f.write_str(self.strategy_column())?;
        } else {
            write!(f, "{} + {}", self.strategy_column(), self.selection_column())?;
        }
        if self.pseudo_labels() == PseudoLabels::Accumulate {
            f.write_str(", accumulated")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn treatments_round_trip_through_their_columns() {
        for strategy in Strategy::ALL {
            assert_eq!(Strategy::from_name(strategy.name()), Some(strategy));
            for selection in ["all", "confidence0.9"] {
                for pseudo_labels in PseudoLabels::ALL {
                    let t = Treatment::Pseudo { strategy, selection: selection.into(), pseudo_labels };
                    assert_eq!(Treatment::from_columns(t.strategy_column(), t.selection_column(), t.pseudo_labels()), Some(t));
                }
            }
        }
        let t =
            Treatment::Pseudo { strategy: Strategy::SelfTraining, selection: "confidence0.9".into(), pseudo_labels: PseudoLabels::Replace };
        assert_eq!((t.to_string(), t.id_label()), ("self + confidence0.9".to_string(), "self.confidence0.9".to_string()));
        let t = Treatment::Pseudo { strategy: Strategy::Cross, selection: "all".into(), pseudo_labels: PseudoLabels::Accumulate };
        assert_eq!((t.to_string(), t.id_label()), ("cross, accumulated".to_string(), "cross.accumulate".to_string()));
        assert!(Treatment::every_label(Strategy::Cross) < t, "replace lists before accumulate");
        let replace = PseudoLabels::Replace;
        assert_eq!(Treatment::from_columns("labels", "all", replace), Some(Treatment::Labels));
        assert_eq!(Treatment::Labels.to_string(), "labels");
        assert_eq!(Treatment::from_columns("ceiling", "all", replace), Some(Treatment::Ceiling));
        assert_eq!(Treatment::from_columns("teach", "all", replace), None);
        assert_eq!(PseudoLabels::Accumulate.at(1), PseudoLabels::Replace, "generation 1 is shared");
    }

    #[test]
    fn an_ensemble_keeps_strict_majorities_and_ignores_split_votes() {
        let teachers = vec![vec![vec![0, 1, 2, 1]], vec![vec![0, 1, 1, 2]], vec![vec![0, 2, 0, 0]]];
        // Pixel 0: 3 × 0; pixel 1: 2 × 1; pixel 2: one each; pixel 3: one 1, one 2, one 0.
        assert_eq!(Strategy::Ensemble.combine(&teachers, 3), vec![vec![0, 1, IGNORE, IGNORE]]);
        // Two teachers: only where they agree.
        assert_eq!(Strategy::Ensemble.combine(&teachers[..2], 3), vec![vec![0, 1, IGNORE, IGNORE]]);
        // One teacher: its labels as they are.
        assert_eq!(Strategy::SelfTraining.combine(&teachers[..1], 3), teachers[0]);
    }

    #[test]
    fn a_consensus_outvotes_a_teacher_that_is_always_wrong() {
        let truth: Vec<u8> = (0..300).map(|i| u8::from(i % 3 == 0)).collect();
        let wrong: Vec<u8> = truth.iter().map(|&t| 1 - t).collect();
        let teachers = vec![vec![truth.clone()], vec![truth.clone()], vec![wrong]];
        assert_eq!(Strategy::Consensus.combine(&teachers, 2), vec![truth]);
    }

    #[test]
    fn names_are_the_manifest_names() {
        for strategy in Strategy::ALL {
            assert_eq!(serde_json::to_string(&strategy).unwrap(), format!("\"{}\"", strategy.name()));
        }
    }

    #[test]
    fn lessons_follow_each_strategy() {
        let chain = [10, 11, 12];
        let lessons = |s: Strategy, g| s.lessons(0, g, &chain).into_iter().map(|l| (l.teachers, l.chain)).collect::<Vec<_>>();
        assert_eq!(lessons(Strategy::SelfTraining, 1), [(vec![10], true)]);
        assert_eq!(lessons(Strategy::Ema, 2), [(vec![10], true)]);
        assert_eq!(lessons(Strategy::Cross, 1), [(vec![11], true), (vec![12], false)]);
        assert_eq!(lessons(Strategy::Cross, 2), [(vec![11], true)]);
        assert_eq!(lessons(Strategy::Ensemble, 1), [(vec![11, 12], true)]);
        assert_eq!(lessons(Strategy::Consensus, 2), [(vec![11, 12], true)]);
    }
}
