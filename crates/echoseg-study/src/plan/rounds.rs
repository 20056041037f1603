//! Seeds where they are needed (`study.max_repeats`): after the planned repeats, the verdicts are
//! looked at, and the chains whose verdicts are still undecided get more seeds, a round at a
//! time, until every verdict is decided or the cap is reached. Every look is paid for: the
//! verdicts' 5 % error is split evenly over the looks the manifest allows
//! ([`crate::plan::manifest::StudySettings::verdict_confidence`], Bonferroni), so deciding at whichever
//! look keeps it.

use std::collections::BTreeSet;

use crate::plan::data::StudyData;
use crate::plan::manifest::Manifest;
use crate::plan::schedule::dependencies;
use crate::plan::strategy::Treatment;
use crate::plan::{Plan, PlannedRun, plan_repeats};

/// The runs one verdict row judges, over the seeds: a strategy's (and selection's) chain
/// student of one model at one generation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VerdictChain {
    /// The strategy and selection that taught it.
    pub treatment: Treatment,
    /// The student's model.
    pub model: String,
    /// Its generation.
    pub generation: u32,
}

impl VerdictChain {
    /// The chain `run` belongs to.
    pub fn of(run: &PlannedRun) -> Self {
        Self { treatment: run.treatment(), model: run.model.clone(), generation: run.generation }
    }
}

/// One round of added seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Round {
    /// The first repeat it adds.
    pub first: u32,
    /// How many repeats it adds.
    pub seeds: u32,
    /// The chains that get them: those with a verdict undecided at the look before.
    pub chains: Vec<VerdictChain>,
}

impl Round {
    fn holds(&self, repeat: u32) -> bool {
        (self.first..self.first + self.seeds).contains(&repeat)
    }
}

/// The plan with the planned repeats and the rounds' added seeds. A round's repeat holds only
/// the runs its chains need: their students, every teacher back to generation 0 (a student
/// learns from teachers of its own seed), and the ceilings of the students' architectures,
/// which the gap table pairs them with.
pub fn plan_with_rounds(manifest: &Manifest, data: &StudyData, rounds: &[Round]) -> Plan {
    let full = plan_repeats(manifest, data, next_repeat(manifest, rounds));
    if rounds.is_empty() {
        return full;
    }
    let round_of = |run: &PlannedRun| rounds.iter().find(|r| r.holds(run.repeat));
    let mut keep: Vec<bool> = full
        .runs
        .iter()
        .map(|run| match round_of(run) {
            None => true,
            Some(round) => run.chain && run.generation > 0 && round.chains.contains(&VerdictChain::of(run)),
        })
        .collect();
    // Whatever a kept run waits for (teachers, a pre-trained model's generation 0): those come
    // earlier in the plan, so one pass from the end reaches every ancestor.
    let needs = dependencies(&full);
    for i in (0..full.runs.len()).rev() {
        if keep[i] {
            needs[i].iter().for_each(|&n| keep[n] = true);
        }
    }
    // The ceilings the gap table pairs the added students (teachers of later generations too) with.
    for i in 0..full.runs.len() {
        if keep[i] && full.runs[i].generation > 0 && round_of(&full.runs[i]).is_some() {
            full.ceiling_of(&full.runs[i]).into_iter().for_each(|c| keep[c] = true);
        }
    }
    full.retain(&keep)
}

/// The round after looking at a finished plan whose chain runs `undecided` have an undecided
/// verdict, or `None` when none has or the cap (`study.max_repeats`) is reached.
pub fn next_round(manifest: &Manifest, plan: &Plan, rounds: &[Round], undecided: &[usize]) -> Option<Round> {
    let first = next_repeat(manifest, rounds);
    let seeds = manifest.study.repeats_per_round.min(manifest.study.most_repeats().saturating_sub(first));
    let chains: BTreeSet<VerdictChain> = undecided.iter().map(|&i| VerdictChain::of(&plan.runs[i])).collect();
    (seeds > 0 && !chains.is_empty()).then(|| Round { first, seeds, chains: chains.into_iter().collect() })
}

/// Whether another round may add seeds after `rounds`: only then is a look worth taking.
pub fn may_add(manifest: &Manifest, rounds: &[Round]) -> bool {
    next_repeat(manifest, rounds) < manifest.study.most_repeats()
}

/// The first repeat after the planned ones and `rounds`.
fn next_repeat(manifest: &Manifest, rounds: &[Round]) -> u32 {
    manifest.study.repeats + rounds.iter().map(|r| r.seeds).sum::<u32>()
}
