//! What a user takes home: masks better than each source. `echoseg export` writes the committee
//! mask ([`crate::analysis::committee`]) of one configuration for every image of the study, in the
//! folder layout.

use std::path::Path;

use echoseg_agree::{TruthScores, pooled_confusion};
use echoseg_nets::{Device, Network, load_network, predict_tiled};
use echoseg_scene::{LabelMap, Scene};
use serde::Serialize;

use crate::StudyError;
use crate::analysis::committee::{CommitteeMask, Configuration, committee_mask, configurations};
use crate::analysis::outcome::RunOutcome;
use crate::plan::data::StudyData;
use crate::plan::manifest::Manifest;
use crate::plan::strategy::{PseudoLabels, Treatment};
use crate::plan::{Plan, PlannedRun};
use crate::store::{StudyDir, read_json, write_image_png, write_json};

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
        /// The pseudo-label mode (`replace` unless the study accumulates).
        pseudo_labels: PseudoLabels,
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
            ExportChoice::Named { generation, strategy, selection, pseudo_labels } => {
                let wanted = Treatment::from_columns(strategy, selection, pseudo_labels.at(*generation));
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
