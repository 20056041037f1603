//! Sample panels: for a few test images, the image, its truth, each source's labels, each
//! model's prediction at generation 0 and at the last generation, and where the models disagree.

use echoseg_study::read::SampleIndex;
use echoseg_study::read::{IGNORE, Strategy, StudyDir, Treatment};
use echoseg_study::read::{WorstIndex, WorstMap};
use echoseg_study::read::{read_json, read_labels};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::chart::{Chart, series_colour, text};
use echoseg_study::read::ResultRow;

/// One tile of the panel grid.
#[derive(Clone, Debug)]
pub enum Tile {
    /// An RGB image, 8 bits per channel, row-major interleaved.
    Image(Vec<u8>),
    /// A label map (class per pixel; 255 = unknown).
    Labels(Vec<u8>),
    /// Share of models disagreeing with the per-pixel majority, 0 ..= 1.
    Disagreement(Vec<f32>),
}

/// Rows of tiles under column titles.
#[derive(Clone, Debug)]
pub struct SamplePanels {
    /// Width and height in image pixels of each row's tiles (images may differ in size).
    pub sizes: Vec<(usize, usize)>,
    /// Column titles.
    pub columns: Vec<String>,
    /// One row per sample image.
    pub rows: Vec<Vec<Tile>>,
    /// Class names, for the legend.
    pub classes: Vec<String>,
    /// What red marks, for the legend.
    pub highlight: String,
}

/// Screen pixels per image pixel for images up to [`ZOOMED_SIDE`] px; larger ones are shown
/// [`LARGEST_TILE`] px across at most.
const SCALE: usize = 3;
const ZOOMED_SIDE: usize = 100;
const LARGEST_TILE: usize = 300;
const GAP: usize = 6;
const TITLE: usize = 34;
const LEGEND: usize = 30;

fn class_colour(c: u8) -> RGBColor {
    match c {
        0 => RGBColor(40, 40, 40),
        255 => RGBColor(255, 255, 255),
        c => series_colour(usize::from(c) - 1),
    }
}

impl SamplePanels {
    /// Screen pixels per image pixel: [`SCALE`] for small images, less for large ones.
    fn zoom(&self) -> f64 {
        let side = self.sizes.iter().map(|&(w, h)| w.max(h)).max().unwrap_or(1).max(1);
        if side <= ZOOMED_SIDE { SCALE as f64 } else { (LARGEST_TILE as f64 / side as f64).min(1.0) }
    }

    /// A row's tile size on screen.
    fn tile(&self, row: usize) -> (usize, usize) {
        let (w, h) = self.sizes[row];
        let zoom = self.zoom();
        (((w as f64 * zoom).round() as usize).max(1), ((h as f64 * zoom).round() as usize).max(1))
    }

    /// Column width on screen: the widest row's tile.
    fn column_width(&self) -> usize {
        (0..self.rows.len()).map(|r| self.tile(r).0).max().unwrap_or(0)
    }
}

impl Chart for SamplePanels {
    fn size(&self) -> (u32, u32) {
        let w = self.columns.len() * (self.column_width() + GAP) + GAP;
        let h = TITLE + (0..self.rows.len()).map(|r| self.tile(r).1 + GAP).sum::<usize>() + LEGEND;
        (w as u32, h as u32)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let cw = self.column_width();
        let centred = text(12).pos(Pos::new(HPos::Center, VPos::Center));
        for (c, title) in self.columns.iter().enumerate() {
            let x = GAP + c * (cw + GAP) + cw / 2;
            area.draw(&Text::new(title.clone(), (x as i32, (TITLE / 2) as i32), centred.clone())).map_err(err)?;
        }
        let mut y0 = TITLE;
        for (r, row) in self.rows.iter().enumerate() {
            let ((w, h), (tw, th)) = (self.sizes[r], self.tile(r));
            for (c, tile) in row.iter().enumerate() {
                let x0 = GAP + c * (cw + GAP);
                // Screen block (bx, by) shows the image pixel under its top-left corner.
                let (bw, bh) = (tw.div_ceil(w.min(tw)), th.div_ceil(h.min(th)));
                for by in (0..th).step_by(bh) {
                    for bx in (0..tw).step_by(bw) {
                        let p = (by * h / th) * w + bx * w / tw;
                        let colour = match tile {
                            Tile::Image(rgb) => RGBColor(rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2]),
                            Tile::Labels(l) => class_colour(l[p]),
                            Tile::Disagreement(d) => {
                                let v = (255.0 * (1.0 - d[p].clamp(0.0, 1.0))) as u8;
                                RGBColor(255, v, v)
                            }
                        };
                        let (px, py) = ((x0 + bx) as i32, (y0 + by) as i32);
                        area.draw(&Rectangle::new([(px, py), (px + bw as i32, py + bh as i32)], colour.filled())).map_err(err)?;
                    }
                }
            }
            y0 += th + GAP;
        }
        let y = (y0 + LEGEND / 2) as i32;
        let mut x = GAP as i32;
        let left = text(12).pos(Pos::new(HPos::Left, VPos::Center));
        let mut entries: Vec<(String, RGBColor)> =
            self.classes.iter().enumerate().map(|(i, n)| (n.clone(), class_colour(i.min(254) as u8))).collect();
        entries.push(("no label".into(), class_colour(255)));
        entries.push((self.highlight.clone(), RGBColor(255, 0, 0)));
        for (name, colour) in entries {
            area.draw(&Rectangle::new([(x, y - 6), (x + 12, y + 6)], colour.filled())).map_err(err)?;
            area.draw(&Rectangle::new([(x, y - 6), (x + 12, y + 6)], BLACK.stroke_width(1))).map_err(err)?;
            area.draw(&Text::new(name.clone(), (x + 16, y), left.clone())).map_err(err)?;
            x += 16 + 8 * name.len() as i32 + 16;
        }
        Ok(())
    }
}

/// Per pixel, the share of `maps` that differ from the most common label there.
fn disagreement(maps: &[&Vec<u8>]) -> Vec<f32> {
    let n = maps.len().max(1) as f32;
    (0..maps.first().map_or(0, |m| m.len()))
        .map(|p| {
            let mut counts = [0u16; 256];
            maps.iter().for_each(|m| counts[usize::from(m[p])] += 1);
            let top = counts.iter().copied().max().unwrap_or(0);
            (n - f32::from(top)) / n
        })
        .collect()
}

/// The panels of a finished study: repeat 0's chain models at generation 0 and at the last
/// generation of the first strategy (`self` when run); `None` when the study wrote no samples.
pub fn sample_panels(dir: &StudyDir, rows: &[ResultRow], models: &[String]) -> Option<SamplePanels> {
    let index: SampleIndex = read_json(&dir.samples_index()).ok()?;
    let stored = read_labels(&dir.samples_labels()).ok()?;
    let maps = &stored.maps;
    let run_of = |model: &str, generation: i64, treatment: &Treatment| {
        rows.iter()
            .find(|r| {
                r.is_model() && r.chain && r.repeat == 0 && r.model == model && r.generation == generation && &r.treatment == treatment
            })
            .map(|r| r.run.clone())
    };
    let last = rows.iter().filter(|r| r.is_model()).map(|r| r.generation).max().unwrap_or(0);
    let mut strategies: Vec<&Treatment> = rows.iter().filter(|r| r.is_model() && r.generation == last).map(|r| &r.treatment).collect();
    let self_training = Treatment::every_label(Strategy::SelfTraining);
    strategies.sort_by_cached_key(|t| (**t != self_training, t.to_string()));
    let later = strategies.first().copied().filter(|_| last > 0);
    let mut columns: Vec<String> = vec!["image".into()];
    columns.extend(index.maps.iter().cloned());
    let source_labels = Treatment::Labels;
    let mut generations: Vec<(i64, &Treatment)> = vec![(0, &source_labels)];
    generations.extend(later.map(|s| (last, s)));
    let mut predictions: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &(g, s) in &generations {
        let mut group = Vec::new();
        for m in models {
            let Some(run) = run_of(m, g, s) else { continue };
            let Ok(labels) = read_labels(&dir.run(&run).test_labels()).map(|f| f.maps) else { continue };
            columns.push(if g == 0 { format!("{m}, gen 0") } else { format!("{m}, gen {g} {s}") });
            group.push(predictions.len());
            predictions.push(labels);
        }
        if group.len() >= 2 {
            columns.push(format!("disagree, gen {g}"));
        }
        groups.push(group);
    }
    let per_sample = index.maps.len();
    let (mut out_rows, mut sizes) = (Vec::new(), Vec::new());
    for (k, &position) in index.test_positions.iter().enumerate() {
        let rgb = image::open(dir.sample_image(k)).ok()?.to_rgb8().into_raw();
        sizes.push(*stored.sizes.get(k * per_sample)?);
        let mut row = vec![Tile::Image(rgb)];
        row.extend(maps[k * per_sample..(k + 1) * per_sample].iter().cloned().map(Tile::Labels));
        for group in &groups {
            let of = |i: usize| predictions[i].get(position);
            row.extend(group.iter().filter_map(|&i| of(i).cloned().map(Tile::Labels)));
            if group.len() >= 2 {
                let maps: Vec<&Vec<u8>> = group.iter().filter_map(|&i| of(i)).collect();
                row.push(Tile::Disagreement(disagreement(&maps)));
            }
        }
        out_rows.push(row);
    }
    Some(SamplePanels { sizes, columns, rows: out_rows, classes: index.classes, highlight: "models disagree".into() })
}

/// The worst-scored labelled images of each source: the image, the mask the source gave, the
/// class the cross-fitted networks' average finds most probable, the flagged pixels in red and the truth where known;
/// `None` when the study did not search for label issues.
pub fn label_issue_panels(dir: &StudyDir) -> Option<SamplePanels> {
    let index: WorstIndex = read_json(&dir.worst_index()).ok()?;
    let stored = read_labels(&dir.worst_labels()).ok()?;
    let per_image = index.maps.len();
    let flagged = index.position(WorstMap::Flagged)?;
    let truth = index.position(WorstMap::Truth);
    let has_truth = truth.is_some_and(|t| stored.maps.iter().skip(t).step_by(per_image).any(|m| m.iter().any(|&v| v != IGNORE)));
    let shown: Vec<usize> = (0..per_image).filter(|&m| Some(m) != truth || has_truth).collect();
    let mut columns = vec!["image".to_string()];
    columns.extend(shown.iter().map(|&m| index.maps[m].clone()));
    let (mut rows, mut sizes) = (Vec::new(), Vec::new());
    for k in 0..index.images.len() {
        let rgb = image::open(dir.worst_image(k)).ok()?.to_rgb8().into_raw();
        sizes.push(*stored.sizes.get(k * per_image)?);
        let mut row = vec![Tile::Image(rgb)];
        for &m in &shown {
            let map = stored.maps.get(k * per_image + m)?;
            row.push(if m == flagged {
                Tile::Disagreement(map.iter().map(|&v| f32::from(v)).collect())
            } else {
                Tile::Labels(map.clone())
            });
        }
        rows.push(row);
    }
    (!rows.is_empty()).then_some(SamplePanels { sizes, columns, rows, classes: index.classes, highlight: "flagged pixel".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disagreement_is_the_share_outvoted_by_the_majority() {
        let (a, b, c) = (vec![0, 1, 2], vec![0, 1, 1], vec![0, 2, 0]);
        let d = disagreement(&[&a, &b, &c]);
        assert_eq!(d, vec![0.0, 1.0 / 3.0, 2.0 / 3.0]);
    }
}
