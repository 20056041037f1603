//! What a user takes home: masks better than each source. A configuration's **committee mask**
//! is the per-pixel plurality vote of every run of that configuration (each architecture, each
//! seed; ties to the lower class), with the share of runs that voted for it as its confidence.
//! The tables score it on the test images beside each source's own masks there (`masks.csv`),
//! and `echoseg export` writes it for every image of the study, in the folder layout.

use std::path::Path;

use echoseg_agree::{Fingerprint, Metric, TruthScores, pooled_confusion};
use echoseg_nets::{Device, Network, load_network, predict_tiled};
use echoseg_scene::{LabelMap, Scene};
use polars::prelude::*;
use serde::Serialize;

use crate::StudyError;
use crate::data::StudyData;
use crate::fingerprints::fingerprint_of;
use crate::manifest::Manifest;
use crate::outcome::RunOutcome;
use crate::plan::{Plan, PlannedRun, Teaching};
use crate::store::{StudyDir, read_json, write_image_png, write_json};
use crate::strategy::Treatment;

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
    let (mut images, mut metric, mut value) = (vec![], vec![], vec![]);
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
        Column::new("images".into(), images),
        Column::new("metric".into(), metric),
        Column::new("value".into(), value),
    ])
}

/// Which configuration `echoseg export` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportChoice {
    /// The one whose committee mask agrees best with the validation images' source labels.
    BestValidation,
    /// The one named by generation, strategy and selection (`all` unless given).
    Named {
        /// The generation.
        generation: u32,
        /// The strategy column's name: `labels`, `self`, `cross`, …
        strategy: String,
        /// The selection's name.
        selection: String,
    },
}

/// What `echoseg export` wrote and why (also `export.json` in its output folder).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExportSummary {
    /// The configuration written.
    pub configuration: String,
    /// Why it was chosen.
    pub chosen: String,
    /// Its runs (each architecture, each seed).
    pub runs: Vec<String>,
    /// Every configuration with its committee mask's mIoU against the validation images' source labels.
    pub validation_miou: Vec<(String, f64)>,
    /// Masks written.
    pub images: usize,
    /// Its committee mask's mIoU against the truth of every image that has one (`None` without truth).
    pub truth_miou: Option<f64>,
    /// Images with truth behind `truth_miou`.
    pub truth_images: usize,
}

/// A committee mask and its confidence, one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitteeMask {
    /// Class per pixel: the plurality of the runs' predictions.
    pub mask: Vec<u8>,
    /// Share of runs that voted for it, in steps of 1/255.
    pub confidence: Vec<u8>,
}

/// A finished study ready to export: its data, plan and configurations.
struct Finished<'a> {
    manifest: &'a Manifest,
    dir: &'a StudyDir,
    device: &'a Device,
    data: StudyData,
    plan: Plan,
    candidates: Vec<(Configuration, Vec<usize>)>,
}

impl Finished<'_> {
    fn finished(&self, runs: &[usize]) -> bool {
        runs.iter().all(|&r| read_json::<RunOutcome>(&self.dir.run(&self.plan.runs[r].id).outcome()).is_ok())
    }

    fn networks(&self, runs: &[usize]) -> Result<Vec<Network>, StudyError> {
        runs.iter()
            .map(|&r| {
                let run: &PlannedRun = &self.plan.runs[r];
                load_network(&run.network, &self.dir.run(&run.id).checkpoint(), self.device)
                    .map(Network::for_inference)
                    .map_err(|source| StudyError::Nets { run: run.id.clone(), source })
            })
            .collect()
    }

    /// The committee masks of `scenes` by `networks`.
    fn masks(&self, networks: &[Network], scenes: &[&Scene]) -> Result<Vec<CommitteeMask>, StudyError> {
        let images: Vec<_> = scenes.iter().map(|s| &s.image).collect();
        let mut per_run: Vec<Vec<Vec<u8>>> = Vec::with_capacity(networks.len());
        for network in networks {
            let p = predict_tiled(network, &images, self.manifest.inference_batch, self.manifest.tiling, self.device)
                .map_err(|source| StudyError::Nets { run: "export".into(), source })?;
            per_run.push(p.iter().map(echoseg_nets::Probabilities::argmax).collect());
        }
        let classes = self.data.classes.len();
        Ok((0..scenes.len()).map(|i| committee_mask(&per_run.iter().map(|r| r[i].as_slice()).collect::<Vec<_>>(), classes)).collect())
    }

    /// Every finished configuration's committee mIoU against the validation images' source
    /// labels: what a user without truth can check against.
    fn validation_scores(&self) -> Result<Vec<(String, f64)>, StudyError> {
        let validation: Vec<&Scene> = self.data.validation.iter().map(|l| &l.scene).collect();
        let labels: Vec<&[u8]> = self.data.validation.iter().map(|l| l.labels.labels.as_slice()).collect();
        let mut scores = Vec::new();
        for (configuration, runs) in self.candidates.iter().filter(|(_, runs)| !validation.is_empty() && self.finished(runs)) {
            let masks = self.masks(&self.networks(runs)?, &validation)?;
            let predicted: Vec<&[u8]> = masks.iter().map(|m| m.mask.as_slice()).collect();
            scores.push((configuration.to_string(), TruthScores::of(&pooled_confusion(&labels, &predicted, self.data.classes.len())).miou));
        }
        Ok(scores)
    }

    /// The configuration `choice` names, its runs, and why.
    fn choose(&self, choice: &ExportChoice, scores: &[(String, f64)]) -> Result<(Configuration, Vec<usize>, String), StudyError> {
        let found = match choice {
            ExportChoice::BestValidation => {
                let best = scores.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|(name, _)| name.clone());
                let first = || self.candidates.iter().find(|(_, r)| self.finished(r)).map(|(c, _)| c.to_string());
                let why = if scores.is_empty() {
                    "the first finished configuration (the study has no validation images to choose by)"
                } else {
                    "its committee mask agrees best with the validation images' source labels (mIoU)"
                };
                best.or_else(first).and_then(|name| self.candidates.iter().find(|(c, _)| c.to_string() == name)).map(|f| (f, why))
            }
            ExportChoice::Named { generation, strategy, selection } => {
                let wanted = Treatment::from_columns(strategy, selection);
                let found = self.candidates.iter().find(|(c, _)| c.generation == *generation && Some(&c.treatment) == wanted.as_ref());
                let Some(found) = found else {
                    let names: Vec<String> = self.candidates.iter().map(|(c, _)| c.to_string()).collect();
                    return Err(StudyError::Config(format!(
                        "the study has no configuration of generation {generation}, strategy `{strategy}` and selection `{selection}`; it has: {}",
                        names.join("; ")
                    )));
                };
                Some((found, "named on the command line"))
            }
        };
        let Some(((configuration, runs), why)) = found else {
            return Err(StudyError::Config(format!("{} has no finished configuration: run the study first", self.dir.root().display())));
        };
        if !self.finished(runs) {
            return Err(StudyError::Config(format!("{configuration} has runs that did not finish: run the study (with --resume) first")));
        }
        Ok((configuration.clone(), runs.clone(), why.to_string()))
    }
}

/// Writes the committee mask of one configuration for every image of the study (training,
/// validation, test and pool) into `out`: `out/masks/committee/NAME.png` (class indices),
/// `out/confidence/NAME.png` (share of runs voting for it × 255), `out/images/NAME.png` for
/// generated images (a folder study's images are where they were) and `export.json`.
/// `progress(done, total)` is called after each chunk of images.
pub fn export(
    manifest: &Manifest,
    dir: &StudyDir,
    choice: &ExportChoice,
    out: &Path,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ExportSummary, StudyError> {
    let data = StudyData::load(manifest)?;
    let plan = crate::plan::plan(manifest, &data);
    let candidates = configurations(&plan);
    let study = Finished { manifest, dir, device, data, plan, candidates };
    let validation_miou = study.validation_scores()?;
    let (configuration, runs, chosen) = study.choose(choice, &validation_miou)?;
    let networks = study.networks(&runs)?;
    let data = &study.data;
    let scenes: Vec<&Scene> = data.train.iter().chain(&data.validation).map(|l| &l.scene).chain(&data.test).chain(&data.pool).collect();
    let mut truth = echoseg_agree::Confusion::new(data.classes.len());
    let mut truth_images = 0;
    for (done, chunk) in scenes.chunks(32).enumerate() {
        for (scene, committee) in chunk.iter().zip(study.masks(&networks, chunk)?) {
            let (w, h) = (scene.image.width, scene.image.height);
            write_png(&out.join("masks/committee").join(format!("{}.png", scene.name)), w, h, committee.mask.clone())?;
            write_png(&out.join("confidence").join(format!("{}.png", scene.name)), w, h, committee.confidence)?;
            if manifest.world().is_some() {
                write_image_png(&out.join("images").join(format!("{}.png", scene.name)), &scene.image)?;
            }
            if let Some(t) = scene.truth_labels() {
                truth.add_maps(&t.labels, &committee.mask);
                truth_images += 1;
            }
        }
        progress(((done + 1) * 32).min(scenes.len()), scenes.len());
    }
    let summary = ExportSummary {
        configuration: configuration.to_string(),
        chosen,
        runs: runs.iter().map(|&r| study.plan.runs[r].id.clone()).collect(),
        validation_miou,
        images: scenes.len(),
        truth_miou: (truth_images > 0).then(|| truth.miou()),
        truth_images,
    };
    write_json(&out.join("export.json"), &summary)?;
    Ok(summary)
}

/// Writes a grey 8-bit PNG, creating its folder.
fn write_png(path: &Path, width: usize, height: usize, values: Vec<u8>) -> Result<(), StudyError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| StudyError::Io { path: parent.to_path_buf(), source })?;
    }
    echoseg_scene::png::write_label_map(path, &LabelMap { width, height, labels: values })
        .map_err(|e| StudyError::Format { path: path.to_path_buf(), message: e.to_string() })
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
