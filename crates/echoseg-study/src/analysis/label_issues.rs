//! Label issues per source: every labelled image (training and validation) scored by networks
//! that did not train on it, so that a user learns which of their masks look wrong.
//!
//! Out of sample by cross-fitting: the labelled images are dealt into `folds` folds
//! ([`crate::plan::held_out`]); for each fold, each architecture trains on the other folds' labels with the
//! study's training settings (the plan's `crossfit-…` runs) and writes its probabilities on the
//! held-out fold. A network's probabilities on its own training images have learned the very
//! errors they should reveal, and a folder's other images (test, pool) carry no source's mask, so
//! folds are the only way every labelled image gets an out-of-sample opinion. Each fold network
//! learns from (folds − 1)/folds of the labels, so it is somewhat weaker than generation 0's.
//!
//! The scorers are each architecture alone and the `average` of their probabilities:
//! differently built networks err differently, so their mean is the better witness. A bias a
//! source draws the same way on every image (every object 1 px too large) is in the labels
//! the fold networks learn from, so they share it and cannot see it; with `leave_source_out`,
//! each architecture also trains once per source on the other sources' labels only, and the
//! average of those networks is one more scorer, [`OTHER_SOURCES`]. It sees such a bias where
//! the other sources do not share it, and takes their biases for the source's errors instead. Scoring reads
//! one image at a time from the run store (three passes: per-class thresholds; the count of
//! likely mislabelled pixels and the scores; the flags), so its memory does not grow with the
//! number of images beyond one row per image and scorer, kept until the tables are written.

use std::path::Path;

use echoseg_agree::{
    ClassProbabilities, Confusion, FlagBudget, FlagCounts, ImageIssues, IssueCount, SelfConfidence, error_concordance, image_score,
};
use echoseg_nets::{Device, IGNORE, Network, predict_tiled};
use echoseg_scene::Scene;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::StudyError;
use crate::plan::data::{LabelledScene, StudyData};
use crate::plan::manifest::{LabelIssueSettings, Manifest};
use crate::plan::{HeldOut, Plan, Teaching};
use crate::store::{LabelReader, LabelWriter, PendingFile, StudyDir, table_error, write_frame, write_image_png, write_json, write_labels};

/// The scorer that averages every architecture's probabilities.
pub const AVERAGE: &str = "average";

/// The scorer that averages the architectures trained without the scored image's source.
pub const OTHER_SOURCES: &str = "other-sources";

/// Probabilities are stored in steps of 1/255.
const LEVELS: f32 = 255.0;

/// Images predicted at once when writing held-out probabilities.
const CHUNK: usize = 64;

/// The labelled images `held_out` holds out: its training images, then its validation images.
fn held_out_images(data: &StudyData, held_out: HeldOut) -> impl Iterator<Item = &LabelledScene> {
    held_out.members(&data.train, true).chain(held_out.members(&data.validation, true))
}

/// Predicts the labelled images a cross-fitting run held out with its `network` and writes
/// their class probabilities to `path`, a chunk of images at a time.
pub(crate) fn write_held_out(
    manifest: &Manifest,
    data: &StudyData,
    device: &Device,
    network: &Network,
    held_out: HeldOut,
    path: &Path,
    run: &str,
) -> Result<(), StudyError> {
    let classes = data.classes.len();
    let scenes: Vec<&Scene> = held_out_images(data, held_out).map(|l| &l.scene).collect();
    let sizes: Vec<(usize, usize)> = scenes.iter().map(|s| (s.image.width, s.image.height * classes)).collect();
    let mut writer = LabelWriter::create(path, &sizes)?;
    for chunk in scenes.chunks(CHUNK) {
        let images: Vec<_> = chunk.iter().map(|s| &s.image).collect();
        let probabilities = predict_tiled(network, &images, manifest.inference_batch, manifest.tiling, device)
            .map_err(|source| StudyError::Nets { run: run.to_string(), source })?;
        for p in probabilities {
            writer.push(&p.values.iter().map(|v| (v * LEVELS).round().clamp(0.0, LEVELS) as u8).collect::<Vec<u8>>())?;
        }
    }
    writer.finish()
}

/// Where one labelled image's out-of-sample probabilities are: its fold and its place in the
/// fold's files, and its place in its source's files (for [`OTHER_SOURCES`]).
#[derive(Clone, Copy)]
struct Placed<'a> {
    labelled: &'a LabelledScene,
    split: &'static str,
    fold: usize,
    position: usize,
    in_source: usize,
}

/// Every labelled image with its fold and places, training images first: the order in which
/// [`held_out_images`] wrote each fold's and each source's files.
fn placed(data: &StudyData, folds: u32, sources: usize) -> Vec<Placed<'_>> {
    let k = folds as usize;
    let train_in = |fold: usize| (data.train.len() + k - 1 - fold) / k;
    let mut seen = vec![0usize; sources];
    let mut in_source = |l: &LabelledScene| {
        seen[l.source] += 1;
        seen[l.source] - 1
    };
    let mut images = Vec::with_capacity(data.train.len() + data.validation.len());
    for (i, l) in data.train.iter().enumerate() {
        images.push(Placed { labelled: l, split: "train", fold: i % k, position: i / k, in_source: in_source(l) });
    }
    for (j, l) in data.validation.iter().enumerate() {
        let (fold, position) = (j % k, train_in(j % k) + j / k);
        images.push(Placed { labelled: l, split: "validation", fold, position, in_source: in_source(l) });
    }
    images
}

/// Every architecture's held-out probability files: one reader per fold and, with
/// `leave_source_out`, one per source.
struct Witnesses {
    names: Vec<String>,
    folds: Vec<Vec<LabelReader>>,
    sources: Vec<Vec<LabelReader>>,
    classes: usize,
}

impl Witnesses {
    fn open(plan: &Plan, dir: &StudyDir, classes: usize) -> Result<Self, StudyError> {
        let mut names: Vec<String> = Vec::new();
        let (mut folds, mut sources): (Vec<Vec<LabelReader>>, Vec<Vec<LabelReader>>) = (Vec::new(), Vec::new());
        // The plan lists each architecture's folds in order, then each architecture's sources in order.
        for run in plan.cross_fits() {
            let Teaching::CrossFit { held_out } = run.teaching else { continue };
            let readers = match held_out {
                HeldOut::Fold { fold, .. } => {
                    if fold == 0 {
                        names.push(run.model.clone());
                        folds.push(Vec::new());
                    }
                    &mut folds
                }
                HeldOut::Source(source) => {
                    if source == 0 {
                        sources.push(Vec::new());
                    }
                    &mut sources
                }
            };
            if let Some(last) = readers.last_mut() {
                last.push(LabelReader::open(&dir.run(&run.id).held_out_probabilities())?);
            }
        }
        Ok(Self { names, folds, sources, classes })
    }

    /// The scorers' probabilities of one image: the average first, then each architecture,
    /// then the average of the networks trained without its source.
    fn probabilities(&mut self, image: &Placed<'_>) -> Result<Vec<Vec<f32>>, StudyError> {
        let mut each = Vec::with_capacity(self.folds.len() + 2);
        for folds in &mut self.folds {
            each.push(read_probabilities(&mut folds[image.fold], image.position, image, self.classes)?);
        }
        each.insert(0, mean(&each));
        if !self.sources.is_empty() {
            let mut others = Vec::with_capacity(self.sources.len());
            for sources in &mut self.sources {
                others.push(read_probabilities(&mut sources[image.labelled.source], image.in_source, image, self.classes)?);
            }
            each.push(mean(&others));
        }
        Ok(each)
    }

    fn scorers(&self) -> Vec<String> {
        let others = (!self.sources.is_empty()).then(|| OTHER_SOURCES.to_string());
        std::iter::once(AVERAGE.to_string()).chain(self.names.iter().cloned()).chain(others).collect()
    }
}

/// One image's probabilities, the map at `position` of `reader`, checked against its size.
fn read_probabilities(reader: &mut LabelReader, position: usize, image: &Placed<'_>, classes: usize) -> Result<Vec<f32>, StudyError> {
    let map = reader.map(position)?;
    let pixels = image.labelled.labels.labels.len();
    if map.len() != pixels * classes {
        return Err(StudyError::Format {
            path: Path::new("held-out-probabilities.labels").to_path_buf(),
            message: format!("{} has {} values for {pixels} px of {classes} classes", image.labelled.scene.name, map.len()),
        });
    }
    Ok(map.iter().map(|&q| f32::from(q) / LEVELS).collect())
}

/// The pixel-wise mean of several probability maps.
fn mean(maps: &[Vec<f32>]) -> Vec<f32> {
    let n = maps.len().max(1) as f32;
    (0..maps.first().map_or(0, Vec::len)).map(|i| maps.iter().map(|p| p[i]).sum::<f32>() / n).collect()
}

/// One row of `label_issues.*`.
struct IssueRow {
    source: usize,
    image: String,
    split: &'static str,
    scorer: usize,
    score: f64,
    flagged_share: f64,
    error_share: Option<f64>,
    counts: Option<FlagCounts>,
}

/// A source's and scorer's totals, for `label_issue_quality.*`.
#[derive(Default)]
struct Totals {
    scores: Vec<f64>,
    error_shares: Vec<f64>,
    counts: FlagCounts,
    flagged: u64,
    pixels: u64,
}

/// One of the worst images of a source, for the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorstImage {
    /// The source's name.
    pub source: String,
    /// The image's name.
    pub image: String,
    /// Its score by the average (low: likely wrong).
    pub score: f64,
    /// Share of its pixels whose given label is wrong, where truth is known.
    pub error_share: Option<f64>,
}

/// What `label_issues/worst.json` lists; `worst.labels` holds four maps per image in the order
/// of [`WorstIndex::maps`], and `worst-K.png` the images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorstIndex {
    /// The images, worst first within each source, sources in manifest order.
    pub images: Vec<WorstImage>,
    /// Names of the maps stored per image.
    pub maps: Vec<String>,
    /// Class names, background first.
    pub classes: Vec<String>,
    /// How pixels were flagged and by whom, in a sentence for the report.
    pub method: String,
}

impl WorstIndex {
    /// Where `map` sits among each image's maps; `None` in an index written without it.
    pub fn position(&self, map: WorstMap) -> Option<usize> {
        self.maps.iter().position(|m| m == map.name())
    }
}

/// One of the maps stored per worst image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorstMap {
    /// The mask the source gave.
    Given,
    /// The class the cross-fitted networks' average finds most probable.
    Average,
    /// The pixels flagged as label issues.
    Flagged,
    /// The truth, where known.
    Truth,
}

impl WorstMap {
    /// Its name in `worst.json`.
    pub fn name(self) -> &'static str {
        match self {
            WorstMap::Given => "given",
            WorstMap::Average => AVERAGE,
            WorstMap::Flagged => "flagged",
            WorstMap::Truth => "truth",
        }
    }
}

/// The maps stored per worst image, in their order.
pub const WORST_MAPS: [WorstMap; 4] = [WorstMap::Given, WorstMap::Average, WorstMap::Flagged, WorstMap::Truth];

/// Scores every labelled image of every source with the cross-fitting runs' probabilities and
/// writes `label_issues.*`, `label_issue_quality.*`, `label_issue_confusions.*` and
/// `label_issues/`; without `[label_issues]` it removes what an earlier study left.
pub(crate) fn write_label_issues(manifest: &Manifest, plan: &Plan, data: &StudyData, dir: &StudyDir) -> Result<(), StudyError> {
    let Some(settings) = manifest.label_issues.filter(|_| !plan.cross_fits().is_empty()) else {
        for path in [
            dir.label_issues_parquet(),
            dir.label_issues_csv(),
            dir.label_issue_quality_parquet(),
            dir.label_issue_quality_csv(),
            dir.label_issue_confusions_parquet(),
            dir.label_issue_confusions_csv(),
        ] {
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_dir_all(dir.label_issues());
        return Ok(());
    };
    let sources = manifest.sources.len();
    let images = placed(data, settings.folds, sources);
    let mut witnesses = Witnesses::open(plan, dir, data.classes.len())?;
    let thresholds = thresholds(&images, &mut witnesses, sources)?;
    let (counts, mut rows) = scores(&images, &mut witnesses, &thresholds, settings.temperature)?;
    let scorers = witnesses.scorers();
    let worst = worst_images(settings.worst, sources, &images, &rows, scorers.len());
    let exports = Exports::start(&settings, manifest, data, dir)?;
    let flags = flags(&images, &mut witnesses, &counts, &mut rows, &worst, exports)?;

    let names: Vec<&str> = manifest.sources.iter().map(|s| s.name.as_str()).collect();
    let mut frame = issue_frame(&rows, &names, &scorers).map_err(table_error(&dir.label_issues_parquet()))?;
    write_frame(&mut frame, &dir.label_issues_parquet(), &dir.label_issues_csv())?;
    let mut frame = quality_frame(&flags.totals, &names, &scorers).map_err(table_error(&dir.label_issue_quality_parquet()))?;
    write_frame(&mut frame, &dir.label_issue_quality_parquet(), &dir.label_issue_quality_csv())?;
    let confusions = confusion_frame(&flags.confusions, &names, data.classes.names());
    let mut frame = confusions.map_err(table_error(&dir.label_issue_confusions_parquet()))?;
    write_frame(&mut frame, &dir.label_issue_confusions_parquet(), &dir.label_issue_confusions_csv())?;
    let others = if witnesses.sources.is_empty() {
        ""
    } else {
        "; other-sources: the mean probability of the same architectures trained on the other sources' labels only"
    };
    let method = format!(
        "{} folds: each labelled image is scored by networks ({}) trained on the other folds' labels; the average is their mean probability{others}. \
         Image score: softmin of the given labels' probabilities (temperature {}). Flagged: as many of the least sure pixels as confident \
         learning counts mislabelled, less those whose given class is also the most probable (cleanlab's rules)",
        settings.folds,
        witnesses.names.join(", "),
        settings.temperature
    );
    flags.panels.write(&worst, &images, &rows, scorers.len(), manifest, data, dir, method)
}

/// Pass 1: per source and scorer, each class's threshold, the mean probability of the class
/// over the pixels given it.
fn thresholds(images: &[Placed<'_>], witnesses: &mut Witnesses, sources: usize) -> Result<Vec<Vec<Vec<f32>>>, StudyError> {
    let classes = witnesses.classes;
    let mut confidence = vec![vec![SelfConfidence::new(classes); witnesses.scorers().len()]; sources];
    for image in images {
        for (s, p) in witnesses.probabilities(image)?.iter().enumerate() {
            confidence[image.labelled.source][s].add(&image.labelled.labels.labels, ClassProbabilities { classes, values: p });
        }
    }
    Ok(confidence.iter().map(|per| per.iter().map(SelfConfidence::thresholds).collect()).collect())
}

/// Pass 2: per source and scorer how many pixels look mislabelled, and every image's score
/// (rows in image order, each image's scorers together, the average first).
fn scores(
    images: &[Placed<'_>],
    witnesses: &mut Witnesses,
    thresholds: &[Vec<Vec<f32>>],
    temperature: f64,
) -> Result<(Vec<Vec<IssueCount>>, Vec<IssueRow>), StudyError> {
    let classes = witnesses.classes;
    let mut counts: Vec<Vec<IssueCount>> = thresholds.iter().map(|per| per.iter().map(|t| IssueCount::new(t.clone())).collect()).collect();
    let mut rows = Vec::with_capacity(images.len() * witnesses.scorers().len());
    for image in images {
        let (source, given) = (image.labelled.source, &image.labelled.labels.labels);
        let truth = image.labelled.scene.truth_labels().map(|t| t.labels.as_slice());
        let error_share = truth.map(|t| t.iter().zip(given).filter(|(a, b)| a != b).count() as f64 / given.len().max(1) as f64);
        for (s, p) in witnesses.probabilities(image)?.iter().enumerate() {
            let values = ClassProbabilities { classes, values: p };
            counts[source][s].add(given, values);
            rows.push(IssueRow {
                source,
                image: image.labelled.scene.name.clone(),
                split: image.split,
                scorer: s,
                score: image_score(given, values, temperature),
                flagged_share: 0.0,
                error_share,
                counts: None,
            });
        }
    }
    Ok((counts, rows))
}

/// What pass 3 found besides the rows it completes.
struct Flags {
    totals: Vec<Vec<Totals>>,
    confusions: Vec<Confusion>,
    panels: WorstPanels,
}

/// Pass 3, in pass 2's image order: the flagged pixels of every image and scorer, against the
/// truth where it is known; the worst images' maps and the .npy files on the way.
fn flags(
    images: &[Placed<'_>],
    witnesses: &mut Witnesses,
    counts: &[Vec<IssueCount>],
    rows: &mut [IssueRow],
    worst: &[usize],
    mut exports: Option<Exports>,
) -> Result<Flags, StudyError> {
    let (classes, scorers) = (witnesses.classes, witnesses.scorers().len());
    let mut budgets: Vec<Vec<FlagBudget>> = counts.iter().map(|per| per.iter().map(IssueCount::budget).collect()).collect();
    let mut totals: Vec<Vec<Totals>> = counts.iter().map(|per| per.iter().map(|_| Totals::default()).collect()).collect();
    let mut confusions: Vec<Confusion> = vec![Confusion::new(classes); counts.len()];
    let mut panels = WorstPanels::default();
    for (n, image) in images.iter().enumerate() {
        let probabilities = witnesses.probabilities(image)?;
        let (source, given) = (image.labelled.source, &image.labelled.labels.labels);
        let truth = image.labelled.scene.truth_labels().map(|t| t.labels.as_slice());
        for (s, p) in probabilities.iter().enumerate() {
            let values = ClassProbabilities { classes, values: p };
            let issues = ImageIssues::of(given, values, &mut budgets[source][s]);
            let row = &mut rows[n * scorers + s];
            let flagged = issues.flagged_pixels();
            row.flagged_share = flagged as f64 / given.len().max(1) as f64;
            row.counts = truth.map(|t| FlagCounts::of(&issues.flagged, given, t));
            let total = &mut totals[source][s];
            total.scores.push(row.score);
            total.flagged += flagged as u64;
            total.pixels += given.len() as u64;
            if let (Some(e), Some(c)) = (row.error_share, row.counts) {
                total.error_shares.push(e);
                total.counts.merge(&c);
            }
            if s == 0 {
                confusions[source].merge(&issues.confusions);
                if worst.contains(&n) {
                    panels.add(n, image, values, &issues);
                }
            }
        }
        if let Some(e) = exports.as_mut() {
            e.push(image, &probabilities[0])?;
        }
    }
    if let Some(e) = exports {
        e.finish()?;
    }
    Ok(Flags { totals, confusions, panels })
}

/// Per source, the `worst` images the average scores lowest, worst first (indices into `images`).
fn worst_images(worst: usize, sources: usize, images: &[Placed<'_>], rows: &[IssueRow], scorers: usize) -> Vec<usize> {
    let mut chosen = Vec::new();
    for s in 0..sources {
        // Each image's average row comes first among its rows: row n·scorers belongs to image n.
        let mut mine: Vec<usize> = (0..images.len()).filter(|&n| images[n].labelled.source == s).collect();
        mine.sort_by(|&a, &b| rows[a * scorers].score.total_cmp(&rows[b * scorers].score));
        chosen.extend(mine.into_iter().take(worst));
    }
    chosen
}

/// The worst images' maps, gathered during the third pass: given, the average's most probable class, flagged, truth.
#[derive(Default)]
struct WorstPanels {
    maps: std::collections::BTreeMap<usize, [Vec<u8>; 4]>,
}

impl WorstPanels {
    fn add(&mut self, n: usize, image: &Placed<'_>, average: ClassProbabilities<'_>, issues: &ImageIssues) {
        let given = image.labelled.labels.labels.clone();
        let likely: Vec<u8> = (0..given.len()).map(|p| average.argmax(p)).collect();
        let flagged: Vec<u8> = issues.flagged.iter().map(|f| u8::from(f.is_some())).collect();
        let truth = image.labelled.scene.truth_labels().map_or_else(|| vec![IGNORE; given.len()], |t| t.labels.clone());
        self.maps.insert(n, [given, likely, flagged, truth]);
    }

    /// Writes `label_issues/`: `worst-K.png`, `worst.labels` (four maps per image) and `worst.json`.
    #[allow(clippy::too_many_arguments)]
    fn write(
        mut self,
        worst: &[usize],
        images: &[Placed<'_>],
        rows: &[IssueRow],
        scorers: usize,
        manifest: &Manifest,
        data: &StudyData,
        dir: &StudyDir,
        method: String,
    ) -> Result<(), StudyError> {
        let (mut index, mut maps, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
        for &n in worst {
            let Some(four) = self.maps.remove(&n) else { continue };
            let scene = &images[n].labelled.scene;
            write_image_png(&dir.worst_image(index.len()), &scene.image)?;
            maps.extend(four);
            sizes.resize(maps.len(), (scene.image.width, scene.image.height));
            let row = &rows[n * scorers];
            index.push(WorstImage {
                source: manifest.sources[images[n].labelled.source].name.clone(),
                image: scene.name.clone(),
                score: row.score,
                error_share: row.error_share,
            });
        }
        write_labels(&dir.worst_labels(), &sizes, &maps)?;
        let worst = WorstIndex {
            images: index,
            maps: WORST_MAPS.map(|m| m.name().to_string()).to_vec(),
            classes: data.classes.names().to_vec(),
            method,
        };
        write_json(&dir.worst_index(), &worst)
    }
}

/// The rows ranked within each source and scorer (1 = the most suspect image).
fn issue_frame(rows: &[IssueRow], sources: &[&str], scorers: &[String]) -> PolarsResult<DataFrame> {
    let mut rank = vec![0u32; rows.len()];
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        (rows[a].source, rows[a].scorer).cmp(&(rows[b].source, rows[b].scorer)).then(rows[a].score.total_cmp(&rows[b].score))
    });
    let mut previous = None;
    let mut next = 0;
    for &i in &order {
        let group = (rows[i].source, rows[i].scorer);
        next = if previous == Some(group) { next + 1 } else { 1 };
        previous = Some(group);
        rank[i] = next;
    }
    let text = |f: &dyn Fn(&IssueRow) -> String| rows.iter().map(f).collect::<Vec<String>>();
    let float = |f: &dyn Fn(&IssueRow) -> Option<f64>| rows.iter().map(f).collect::<Vec<Option<f64>>>();
    DataFrame::new_infer_height(vec![
        Column::new("source".into(), text(&|r| sources[r.source].to_string())),
        Column::new("image".into(), text(&|r| r.image.clone())),
        Column::new("split".into(), text(&|r| r.split.to_string())),
        Column::new("scorer".into(), text(&|r| scorers[r.scorer].clone())),
        Column::new("rank".into(), rank),
        Column::new("score".into(), float(&|r| Some(r.score))),
        Column::new("flagged_share".into(), float(&|r| Some(r.flagged_share))),
        Column::new("error_share".into(), float(&|r| r.error_share)),
        Column::new("flagged_precision".into(), float(&|r| r.counts.and_then(|c| c.precision()))),
        Column::new("flagged_recall".into(), float(&|r| r.counts.and_then(|c| c.recall()))),
    ])
}

/// Per source and scorer: how well the scores rank images by their true error share
/// (`auroc`, the concordance of [`error_concordance`]) and how right the flagged pixels are.
fn quality_frame(totals: &[Vec<Totals>], sources: &[&str], scorers: &[String]) -> PolarsResult<DataFrame> {
    let (mut source, mut scorer, mut images, mut auroc) = (vec![], vec![], vec![], vec![]);
    let (mut precision, mut recall, mut flagged, mut error) = (vec![], vec![], vec![], vec![]);
    for (s, per) in totals.iter().enumerate() {
        for (k, t) in per.iter().enumerate().filter(|(_, t)| !t.scores.is_empty()) {
            source.push(sources[s].to_string());
            scorer.push(scorers[k].clone());
            images.push(t.scores.len() as i64);
            let known = t.error_shares.len() == t.scores.len();
            auroc.push(if known { error_concordance(&t.scores, &t.error_shares) } else { None });
            precision.push(t.counts.precision().filter(|_| known));
            recall.push(t.counts.recall().filter(|_| known));
            flagged.push(t.flagged as f64 / t.pixels.max(1) as f64);
            error.push(known.then(|| t.error_shares.iter().sum::<f64>() / t.error_shares.len().max(1) as f64));
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new("source".into(), source),
        Column::new("scorer".into(), scorer),
        Column::new("images".into(), images),
        Column::new("auroc".into(), auroc),
        Column::new("flagged_precision".into(), precision),
        Column::new("flagged_recall".into(), recall),
        Column::new("flagged_share".into(), flagged),
        Column::new("error_share".into(), error),
    ])
}

/// Per source, given class → the average's most probable class, in pixels.
fn confusion_frame(confusions: &[Confusion], sources: &[&str], classes: &[String]) -> PolarsResult<DataFrame> {
    let (mut source, mut given, mut predicted, mut pixels) = (vec![], vec![], vec![], vec![]);
    for (s, c) in confusions.iter().enumerate().filter(|(_, c)| c.total() > 0) {
        for g in 0..c.classes() {
            for p in 0..c.classes() {
                source.push(sources[s].to_string());
                given.push(classes[g].clone());
                predicted.push(classes[p].clone());
                pixels.push(c.count(g, p) as i64);
            }
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new("source".into(), source),
        Column::new("given".into(), given),
        Column::new("predicted".into(), predicted),
        Column::new("pixels".into(), pixels),
    ])
}

/// The optional .npy files of every source: its labels, its truth and the average's
/// probabilities, for bench/label_issues_reference.py (cleanlab wants arrays of one image size).
struct Exports {
    files: Vec<Option<SourceExport>>,
}

struct SourceExport {
    labels: NpyWriter,
    truth: Option<NpyWriter>,
    probabilities: NpyWriter,
}

impl Exports {
    fn start(settings: &LabelIssueSettings, manifest: &Manifest, data: &StudyData, dir: &StudyDir) -> Result<Option<Self>, StudyError> {
        if !settings.export_probabilities {
            // An earlier study's arrays would pass for this one's.
            if let Ok(entries) = std::fs::read_dir(dir.label_issues()) {
                for path in entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "npy")) {
                    let _ = std::fs::remove_file(path);
                }
            }
            return Ok(None);
        }
        let classes = data.classes.len();
        let mut files = Vec::new();
        for (s, spec) in manifest.sources.iter().enumerate() {
            let mine: Vec<&LabelledScene> = data.train.iter().chain(&data.validation).filter(|l| l.source == s).collect();
            let Some(first) = mine.first() else {
                files.push(None);
                continue;
            };
            let (w, h) = (first.scene.image.width, first.scene.image.height);
            if mine.iter().any(|l| (l.scene.image.width, l.scene.image.height) != (w, h)) {
                return Err(StudyError::Config(format!(
                    "label_issues.export_probabilities needs the images of source `{}` to share one size (cleanlab takes one array)",
                    spec.name
                )));
            }
            let n = mine.len();
            let path = |what: &str| dir.label_issue_npy(&spec.name, what);
            let with_truth = mine.iter().all(|l| l.scene.truth.is_some());
            files.push(Some(SourceExport {
                labels: NpyWriter::create(&path("labels"), "|u1", &[n, h, w])?,
                truth: if with_truth { Some(NpyWriter::create(&path("truth"), "|u1", &[n, h, w])?) } else { None },
                probabilities: NpyWriter::create(&path("pred_probs"), "<f4", &[n, classes, h, w])?,
            }));
        }
        Ok(Some(Self { files }))
    }

    fn push(&mut self, image: &Placed<'_>, average: &[f32]) -> Result<(), StudyError> {
        let Some(Some(file)) = self.files.get_mut(image.labelled.source) else { return Ok(()) };
        file.labels.write(&image.labelled.labels.labels)?;
        if let (Some(t), Some(truth)) = (file.truth.as_mut(), image.labelled.scene.truth_labels()) {
            t.write(&truth.labels)?;
        }
        let bytes: Vec<u8> = average.iter().flat_map(|v| v.to_le_bytes()).collect();
        file.probabilities.write(&bytes)
    }

    fn finish(self) -> Result<(), StudyError> {
        for file in self.files.into_iter().flatten() {
            file.labels.finish()?;
            if let Some(t) = file.truth {
                t.finish()?;
            }
            file.probabilities.finish()?;
        }
        Ok(())
    }
}

/// A NumPy `.npy` file (format 1.0) written as the values come, renamed into place when complete.
struct NpyWriter {
    file: PendingFile,
    remaining: usize,
}

impl NpyWriter {
    fn create(path: &Path, descr: &str, shape: &[usize]) -> Result<Self, StudyError> {
        let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({},), }}", dims.join(", "));
        // Magic (6) + version (2) + length (2) + header + newline is a multiple of 64.
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut head = b"\x93NUMPY\x01\x00".to_vec();
        head.extend_from_slice(&(header.len() as u16).to_le_bytes());
        head.extend_from_slice(header.as_bytes());
        let mut file = PendingFile::create(path)?;
        file.write(&head)?;
        let item = if descr.ends_with('4') { 4 } else { 1 };
        Ok(Self { file, remaining: shape.iter().product::<usize>() * item })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), StudyError> {
        self.remaining = self.remaining.checked_sub(bytes.len()).ok_or_else(|| StudyError::Format {
            path: self.file.path().to_path_buf(),
            message: "more values than the array's shape holds".into(),
        })?;
        self.file.write(bytes)
    }

    fn finish(self) -> Result<(), StudyError> {
        if self.remaining != 0 {
            return Err(StudyError::Format {
                path: self.file.path().to_path_buf(),
                message: format!("{} bytes short of the array's shape", self.remaining),
            });
        }
        self.file.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_labelled_image_has_one_place_in_its_folds_files_and_in_its_sources() {
        let text = "[[sources]]\nkind = \"manual\"\nimages = 11\n[[sources]]\nname = \"b\"\nkind = \"heuristic\"\nimages = 7\n\
                    [nets]\narchitectures = [\"fcn\"]\n[split]\nvalidation = 0.3\ntest = 2\npool = 0\n[study]\ngenerations = 0\nstrategies = [\"self\"]\n\
                    [label_issues]\nfolds = 3\nleave_source_out = true\n";
        let manifest = crate::plan::manifest::parse(Path::new("t.toml"), text).unwrap();
        let data = StudyData::load(&manifest).unwrap();
        assert!(!data.validation.is_empty());
        let all = placed(&data, 3, 2);
        assert_eq!(all.len(), data.train.len() + data.validation.len());
        let check = |held_out: HeldOut, here: Vec<&Placed<'_>>, place: fn(&Placed<'_>) -> usize| {
            let names: Vec<&str> = held_out_images(&data, held_out).map(|l| l.scene.name.as_str()).collect();
            let mut here = here;
            here.sort_by_key(|p| place(p));
            assert_eq!(here.iter().map(|p| place(p)).collect::<Vec<_>>(), (0..names.len()).collect::<Vec<_>>(), "{held_out:?}");
            assert_eq!(here.iter().map(|p| p.labelled.scene.name.as_str()).collect::<Vec<_>>(), names, "{held_out:?}");
        };
        for fold in 0..3 {
            check(HeldOut::Fold { fold, folds: 3 }, all.iter().filter(|p| p.fold == fold as usize).collect(), |p| p.position);
        }
        for source in 0..2 {
            check(HeldOut::Source(source), all.iter().filter(|p| p.labelled.source == source).collect(), |p| p.in_source);
        }
        // One witness run per architecture and source, after the folds' runs, named by the source.
        let plan = crate::plan::plan(&manifest, &data);
        let ids: Vec<&str> = plan.cross_fits().iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), 3 + 2, "{ids:?}");
        assert!(ids[3].contains("-without-manual-") && ids[4].contains("-without-b-"), "{ids:?}");
    }

    #[test]
    fn an_npy_file_has_numpys_header_and_refuses_a_wrong_count() {
        let dir = std::env::temp_dir().join(format!("echoseg-npy-{}", std::process::id()));
        let path = dir.join("a.npy");
        let mut w = NpyWriter::create(&path, "<f4", &[2, 3]).unwrap();
        w.write(&[0u8; 24]).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        assert_eq!((10 + len) % 64, 0);
        assert!(String::from_utf8_lossy(&bytes[10..10 + len]).contains("'shape': (2, 3,)"));
        assert_eq!(bytes.len(), 10 + len + 24);
        let mut short = NpyWriter::create(&path, "|u1", &[4]).unwrap();
        short.write(&[1, 2]).unwrap();
        assert!(short.finish().unwrap_err().to_string().contains("2 bytes short"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
