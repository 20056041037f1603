//! Committee masks: a configuration's **committee mask** is the per-pixel plurality vote of every
//! run of that configuration (each architecture, each seed; ties to the lower class), with the
//! share of runs that voted for it as its confidence. `masks.csv` scores it on the test images
//! beside each source's own masks there; `echoseg export` writes it for every image.

use echoseg_agree::{Fingerprint, Metric, TruthScores, pooled_confusion};
use echoseg_scene::{LabelMap, Scene};
use polars::prelude::*;

use crate::analysis::fingerprints::fingerprint_of;
use crate::plan::data::StudyData;
use crate::plan::manifest::Manifest;
use crate::plan::strategy::Treatment;
use crate::plan::{Plan, Teaching};

/// A configuration of a study: a generation and what its runs learned from. Its committee is
/// every run of it, all architectures and seeds together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configuration {
    /// The generation.
    pub generation: u32,
    /// What it learned from (never the ceiling, which learned from the truth).
    pub treatment: Treatment,
}

impl std::fmt::Display for Configuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "generation {} {}", self.generation, self.treatment)
    }
}

/// Every configuration of `plan` whose masks a user could take home, with its runs (plan
/// indices), in plan order: the ceiling learned from the truth and the cross-fitting runs serve
/// label issues, so neither is one.
pub fn configurations(plan: &Plan) -> Vec<(Configuration, Vec<usize>)> {
    let mut found: Vec<(Configuration, Vec<usize>)> = Vec::new();
    for (i, run) in plan.runs.iter().enumerate() {
        if matches!(run.teaching, Teaching::Truth | Teaching::CrossFit { .. }) {
            continue;
        }
        let configuration = Configuration { generation: run.generation, treatment: run.treatment() };
        match found.iter_mut().find(|(c, _)| *c == configuration) {
            Some((_, runs)) => runs.push(i),
            None => found.push((configuration, vec![i])),
        }
    }
    found
}

/// The committee mask of label maps of one image (one per run) and its confidence, the share
/// of runs voting for the mask's class in steps of 1/255.
pub fn committee_mask(maps: &[&[u8]], classes: usize) -> CommitteeMask {
    let n = maps.len().max(1) as f64;
    let (mask, confidence) =
        echoseg_agree::plurality(maps, classes).into_iter().map(|(c, votes)| (c, (255.0 * votes as f64 / n).round() as u8)).unzip();
    CommitteeMask { mask, confidence }
}

/// Each source's masks on the test images, where it has them ([`StudyData::source_mask_on_test`]).
fn source_masks_on_test(manifest: &Manifest, data: &StudyData) -> Vec<(String, Vec<(usize, LabelMap)>)> {
    let masks = |s: usize| (0..data.test.len()).filter_map(|i| data.source_mask_on_test(manifest, s, i).map(|l| (i, l))).collect();
    manifest.sources.iter().enumerate().map(|(s, spec)| (spec.name.clone(), masks(s))).collect()
}

/// What `masks.csv` holds of one mask set on the test images with truth.
struct MaskScores {
    scores: TruthScores,
    fingerprint: Fingerprint,
    surfaces: Vec<echoseg_agree::ClassSurface>,
    images: usize,
}

/// Scores, fingerprint and surface metrics of masks of some test images against their truth.
fn scored(masks: &[(usize, &[u8])], data: &StudyData) -> Option<MaskScores> {
    let with_truth: Vec<(&Scene, &[u8])> =
        masks.iter().filter_map(|&(i, m)| data.test[i].truth_labels().map(|_| (&data.test[i], m))).collect();
    if with_truth.is_empty() {
        return None;
    }
    let truth: Vec<&[u8]> = with_truth.iter().filter_map(|(s, _)| s.truth_labels().map(|t| t.labels.as_slice())).collect();
    let predicted: Vec<&[u8]> = with_truth.iter().map(|(_, m)| *m).collect();
    let sizes: Vec<(usize, usize)> = with_truth.iter().map(|(s, _)| (s.image.width, s.image.height)).collect();
    let classes = data.classes.len();
    let scenes: Vec<&Scene> = with_truth.iter().map(|(s, _)| *s).collect();
    Some(MaskScores {
        scores: TruthScores::of(&pooled_confusion(&truth, &predicted, classes)),
        fingerprint: fingerprint_of(&predicted, &scenes, &data.classes),
        surfaces: echoseg_agree::class_surfaces(&predicted, &truth, &sizes, classes, echoseg_agree::SURFACE_TOLERANCE),
        images: with_truth.len(),
    })
}

/// What a row of `masks.csv` scores (its `kind` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskKind {
    /// A label source's own masks on the test images.
    Source,
    /// A configuration's committee mask (the plurality of all its runs).
    Committee,
}

impl MaskKind {
    /// The name in the `kind` column.
    pub fn name(self) -> &'static str {
        match self {
            MaskKind::Source => "source",
            MaskKind::Committee => "committee",
        }
    }

    /// The kind a column value names.
    pub fn from_name(name: &str) -> Option<Self> {
        [MaskKind::Source, MaskKind::Committee].into_iter().find(|k| k.name() == name)
    }
}

/// `masks.csv`: every source's masks and every configuration's committee mask on the test images,
/// against the truth (mIoU, the fingerprint and the surface metrics), so the report can say whether the outputs are
/// better than each input. Empty without truth on the test images.
pub(crate) fn masks_frame(manifest: &Manifest, plan: &Plan, data: &StudyData, test_labels: &[Vec<Vec<u8>>]) -> PolarsResult<DataFrame> {
    let (mut mask, mut kind, mut generation, mut strategy, mut selection) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut images, mut metric, mut value, mut pseudo_labels) = (vec![], vec![], vec![], vec![]);
    let class_names = data.classes.names();
    let mut push = |name: &str, what: MaskKind, configuration: Option<&Configuration>, m: MaskScores| {
        let surfaces = m
            .surfaces
            .iter()
            .filter_map(|s| class_names.get(s.class).map(|c| s.metrics(c)))
            .flatten()
            .map(|(metric, v)| (metric.name(), Some(v)));
        let values = std::iter::once((Metric::Miou.name(), Some(m.scores.miou)))
            .chain(m.fingerprint.named().into_iter().map(|(bias, v)| (Metric::Bias(bias).name(), v)))
            .chain(surfaces);
        let n = m.images;
        for (m, v) in values {
            let Some(v) = v else { continue };
            mask.push(name.to_string());
            kind.push(what.name());
            generation.push(configuration.map(|c| i64::from(c.generation)));
            strategy.push(configuration.map(|c| c.treatment.strategy_column().to_string()));
            selection.push(configuration.map(|c| c.treatment.selection_column().to_string()));
            pseudo_labels.push(configuration.map(|c| c.treatment.pseudo_labels().name()));
            images.push(n as i64);
            metric.push(m);
            value.push(v);
        }
    };
    for (name, masks) in source_masks_on_test(manifest, data) {
        let masks: Vec<(usize, &[u8])> = masks.iter().map(|(i, l)| (*i, l.labels.as_slice())).collect();
        if let Some(s) = scored(&masks, data) {
            push(&name, MaskKind::Source, None, s);
        }
    }
    for (configuration, runs) in configurations(plan) {
        let committee: Vec<Vec<u8>> = (0..data.test.len())
            .map(|i| committee_mask(&runs.iter().map(|&r| test_labels[r][i].as_slice()).collect::<Vec<_>>(), data.classes.len()).mask)
            .collect();
        let masks: Vec<(usize, &[u8])> = committee.iter().enumerate().map(|(i, m)| (i, m.as_slice())).collect();
        if let Some(s) = scored(&masks, data) {
            push(&format!("committee of {configuration}"), MaskKind::Committee, Some(&configuration), s);
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new("mask".into(), mask),
        Column::new("kind".into(), kind),
        Column::new("generation".into(), generation),
        Column::new("strategy".into(), strategy),
        Column::new("selection".into(), selection),
        Column::new("pseudo_labels".into(), pseudo_labels),
        Column::new("images".into(), images),
        Column::new("metric".into(), metric),
        Column::new("value".into(), value),
    ])
}

/// A committee mask and its confidence, one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitteeMask {
    /// Class per pixel: the plurality of the runs' predictions.
    pub mask: Vec<u8>,
    /// Share of runs that voted for it, in steps of 1/255.
    pub confidence: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committee_mask_is_the_plurality_and_its_confidence_the_vote_share() {
        let (a, b, c, d) = ([0u8, 1, 2, 1], [0u8, 1, 1, 2], [0u8, 2, 1, 0], [0u8, 1, 2, 0]);
        let CommitteeMask { mask, confidence } = committee_mask(&[&a, &b, &c, &d], 3);
        // Pixel 2 ties two votes to two between classes 1 and 2: the lower class.
        assert_eq!(mask, vec![0, 1, 1, 0]);
        assert_eq!(confidence, vec![255, 191, 128, 128]);
    }
}
