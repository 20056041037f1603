//! Surface metrics of one class between a segmentation and a reference: the 95th-percentile
//! Hausdorff distance, average surface distances, normalised surface Dice at a tolerance, and
//! centreline Dice (clDice) for thin structures.
//!
//! The definitions are medpy's (`medpy.metric.binary`): a mask's border is its pixels with a
//! 4-neighbour outside the mask or outside the image (the mask minus its erosion by the cross,
//! the image surrounded by background); the distance of a border pixel is the exact Euclidean
//! distance, in pixels, to the nearest border pixel of the other mask. HD95 is the 95th
//! percentile (linear interpolation, as numpy's) of both directions' distances together; ASD is
//! the mean over one mask's border; ASSD the mean of both directions' distances together (medpy
//! 0.5's: each border pixel weighs alike, so it is not the mean of the two ASDs when the borders
//! differ in length). Normalised surface Dice is the
//! share of both borders' pixels within `tolerance` of the other border (MONAI's
//! `compute_surface_dice` without sub-pixel surfels). clDice (Shit et al., 2021) uses the skeleton
//! of Zhang and Suen's 1984 thinning as the paper defines it. scikit-image's `skeletonize`, which
//! the clDice authors' code calls, is a modified Zhang–Suen (it treats 25 of the 256 neighbourhoods
//! differently, e.g. it removes the corner pixels of staircases), so clDice computed with it
//! differs on thin structures; bench/surface_reference.py measures by how much.
//!
//! Empty masks, a stated rule rather than a gap in the mean: both empty — the best values
//! (distances 0, surface Dice 1, clDice 1: nothing to find, nothing found); exactly one empty
//! (an object missed, or one drawn where there is none) — the worst values (every distance the
//! image's diagonal, the farthest two pixels can lie; surface Dice 0, clDice 0). This is
//! MetricsReloaded's per-case rule (Maier-Hein et al., Nature Methods 2024: an empty
//! prediction of a present structure gets the metric's worst value, both empty its best). Leaving
//! such images out of a mean, as MONAI's NaN does (issue #9095), makes a model that stops finding
//! hard objects look closer to the truth. [`ClassSurface::empty`] counts them.

use serde::Serialize;

/// The tolerance of the normalised surface Dice in the study's tables and `echoseg agree`'s
/// default, px: a border pixel within one pixel of the other border counts as matched.
pub const SURFACE_TOLERANCE: f64 = 1.0;

use crate::bootstrap::mean;
use crate::distance::squared_distance;
use crate::metric::Metric;

/// The surface metrics of one class.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SurfaceScores {
    /// 95th-percentile Hausdorff distance in px.
    pub hd95: f64,
    /// Mean distance from the segmentation's border to the reference's, in px.
    pub asd: f64,
    /// Mean distance from the reference's border to the segmentation's, in px.
    pub asd_reverse: f64,
    /// The mean of both directions' distances together, in px.
    pub assd: f64,
    /// Share of both borders within the tolerance of the other.
    pub surface_dice: f64,
    /// Centreline Dice.
    pub cl_dice: f64,
}

/// Whether pixel (`x`, `y`) is set in `mask`; pixels outside the image are background.
fn set(mask: &[bool], width: usize, height: usize, x: isize, y: isize) -> bool {
    x >= 0 && y >= 0 && (x as usize) < width && (y as usize) < height && mask[y as usize * width + x as usize]
}

/// The border of `mask` (see the module documentation).
pub fn border(mask: &[bool], width: usize, height: usize) -> Vec<bool> {
    let at = |x: isize, y: isize| set(mask, width, height, x, y);
    (0..width * height)
        .map(|i| {
            let (x, y) = ((i % width) as isize, (i / width) as isize);
            mask[i] && !(at(x - 1, y) && at(x + 1, y) && at(x, y - 1) && at(x, y + 1))
        })
        .collect()
}

/// Distances from every border pixel of `from` to the nearest border pixel of `to`.
fn border_distances(from: &[bool], to: &[bool], width: usize, height: usize) -> Vec<f64> {
    let mut d2 = Vec::new();
    squared_distance(to, width, height, &mut d2);
    from.iter().zip(&d2).filter(|(f, _)| **f).map(|(_, &d)| f64::from(d).sqrt()).collect()
}

/// The `q` percentile (0–100) of `values`, interpolating linearly between neighbours as numpy does.
fn percentile(values: &mut [f64], q: f64) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return None;
    }
    let rank = q / 100.0 * (n - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    Some(values[low] + (values[high] - values[low]) * (rank - low as f64))
}

/// The surface metrics of `segmentation` against `reference` (one class's masks, row-major, of
/// one size), with surface Dice at `tolerance` px.
pub fn surface_scores(segmentation: &[bool], reference: &[bool], width: usize, height: usize, tolerance: f64) -> SurfaceScores {
    let (s_any, r_any) = (segmentation.iter().any(|&v| v), reference.iter().any(|&v| v));
    let cl_dice = cl_dice(segmentation, reference, width, height);
    if !s_any || !r_any {
        let both = !s_any && !r_any;
        let distance = if both { 0.0 } else { (width as f64).hypot(height as f64) };
        let dice = if both { 1.0 } else { 0.0 };
        return SurfaceScores { hd95: distance, asd: distance, asd_reverse: distance, assd: distance, surface_dice: dice, cl_dice };
    }
    let (sb, rb) = (border(segmentation, width, height), border(reference, width, height));
    let forward = border_distances(&sb, &rb, width, height);
    let reverse = border_distances(&rb, &sb, width, height);
    let within = forward.iter().chain(&reverse).filter(|&&d| d <= tolerance).count();
    let surface_dice = within as f64 / (forward.len() + reverse.len()) as f64;
    // Both masks have pixels, so both have a border and every mean and percentile is defined.
    let (asd, asd_reverse) = (mean(&forward).unwrap_or(0.0), mean(&reverse).unwrap_or(0.0));
    let mut both: Vec<f64> = forward.iter().chain(&reverse).copied().collect();
    // The percentile sorts `both`, and the mean is summed in that order, as it always was.
    let hd95 = percentile(&mut both, 95.0).unwrap_or(0.0);
    SurfaceScores { hd95, asd, asd_reverse, assd: mean(&both).unwrap_or(0.0), surface_dice, cl_dice }
}

/// One segmentation's surface metrics of one class against truth over a set of images, each the
/// mean over every image (empty masks by the module's rule).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassSurface {
    /// The class index.
    pub class: usize,
    /// The means over the images.
    #[serde(flatten)]
    pub mean: SurfaceScores,
    /// Images where exactly one of the two masks is empty, counted at the worst values.
    pub empty: usize,
}

impl ClassSurface {
    /// The tables' metrics of these means for the class named `class`: HD95, ASSD, surface Dice
    /// and clDice, and the count of images with one mask empty.
    pub fn metrics(&self, class: &str) -> [(Metric, f64); 5] {
        let class = class.to_string();
        [
            (Metric::Hd95(class.clone()), self.mean.hd95),
            (Metric::Assd(class.clone()), self.mean.assd),
            (Metric::SurfaceDice(class.clone()), self.mean.surface_dice),
            (Metric::ClDice(class.clone()), self.mean.cl_dice),
            (Metric::SurfaceEmpty(class), self.empty as f64),
        ]
    }
}

/// The surface metrics of every foreground class (1..`classes`) of `segmentation[i]` against
/// `truth[i]` (label maps of class indices, image `i` of size `sizes[i]`), averaged over the images.
pub fn class_surfaces(
    segmentation: &[&[u8]],
    truth: &[&[u8]],
    sizes: &[(usize, usize)],
    classes: usize,
    tolerance: f64,
) -> Vec<ClassSurface> {
    (1..classes)
        .map(|class| {
            let (scores, empty): (Vec<SurfaceScores>, Vec<bool>) = segmentation
                .iter()
                .zip(truth)
                .zip(sizes)
                .map(|((s, t), &(w, h))| {
                    let (a, b): (Vec<bool>, Vec<bool>) =
                        s.iter().zip(t.iter()).map(|(&x, &y)| (usize::from(x) == class, usize::from(y) == class)).unzip();
                    (surface_scores(&a, &b, w, h, tolerance), a.contains(&true) != b.contains(&true))
                })
                .unzip();
            let over = |f: fn(&SurfaceScores) -> f64| mean(&scores.iter().map(f).collect::<Vec<_>>()).unwrap_or(0.0);
            let mean = SurfaceScores {
                hd95: over(|s| s.hd95),
                asd: over(|s| s.asd),
                asd_reverse: over(|s| s.asd_reverse),
                assd: over(|s| s.assd),
                surface_dice: over(|s| s.surface_dice),
                cl_dice: over(|s| s.cl_dice),
            };
            ClassSurface { class, mean, empty: empty.iter().filter(|&&e| e).count() }
        })
        .collect()
}

/// The 8 neighbours P2..P9 of Zhang and Suen, clockwise from north.
const NEIGHBOURS: [(isize, isize); 8] = [(0, -1), (1, -1), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1)];

/// Whether Zhang–Suen's sub-iteration `pass` (0 or 1) removes the set pixel `i` of `s`.
fn thins(s: &[bool], width: usize, height: usize, i: usize, pass: usize) -> bool {
    let (x, y) = ((i % width) as isize, (i / width) as isize);
    let p = NEIGHBOURS.map(|(dx, dy)| set(s, width, height, x + dx, y + dy));
    let neighbours = p.iter().filter(|&&v| v).count();
    let transitions = (0..8).filter(|&k| !p[k] && p[(k + 1) % 8]).count();
    let (p2, p4, p6, p8) = (p[0], p[2], p[4], p[6]);
    // P2·P4·P6 = P4·P6·P8 = 0 in the first sub-iteration, P2·P4·P8 = P2·P6·P8 = 0 in the second.
    let side = if pass == 0 { !(p4 && p6 && (p2 || p8)) } else { !(p2 && p8 && (p4 || p6)) };
    (2..=6).contains(&neighbours) && transitions == 1 && side
}

/// The set 8-neighbours of pixel `i` in `s`.
fn set_neighbours(s: &[bool], width: usize, height: usize, i: usize) -> impl Iterator<Item = usize> + '_ {
    let (x, y) = ((i % width) as isize, (i / width) as isize);
    NEIGHBOURS.into_iter().filter(move |&(dx, dy)| set(s, width, height, x + dx, y + dy)).map(move |(dx, dy)| {
        let (nx, ny) = ((x + dx) as usize, (y + dy) as usize);
        ny * width + nx
    })
}

/// Puts pixel `i` in both sub-iterations' queues, once.
fn enqueue(i: usize, queued: &mut [Vec<bool>; 2], queues: &mut [Vec<usize>; 2]) {
    for pass in 0..2 {
        if !queued[pass][i] {
            queued[pass][i] = true;
            queues[pass].push(i);
        }
    }
}

/// The Zhang–Suen skeleton of `mask` (the 1984 paper's two sub-iterations; pixels outside the
/// image are background). Each sub-iteration checks only the pixels whose neighbourhood changed
/// since that sub-iteration last checked them (at first, the border: a pixel needs a background
/// neighbour to go), so a thick object costs time in its area, not in its area times its
/// thickness, and the skeleton is the full scan's, pixel for pixel.
pub fn skeleton(mask: &[bool], width: usize, height: usize) -> Vec<bool> {
    let mut s = mask.to_vec();
    let mut queued = [vec![false; s.len()], vec![false; s.len()]];
    let mut queues: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    for i in (0..s.len()).filter(|&i| s[i] && set_neighbours(&s, width, height, i).count() < 8) {
        enqueue(i, &mut queued, &mut queues);
    }
    loop {
        let mut changed = false;
        for pass in 0..2 {
            let candidates = std::mem::take(&mut queues[pass]);
            candidates.iter().for_each(|&i| queued[pass][i] = false);
            // Decided on the state before the sub-iteration, then removed together, as the paper does.
            let remove: Vec<usize> = candidates.into_iter().filter(|&i| s[i] && thins(&s, width, height, i, pass)).collect();
            changed |= !remove.is_empty();
            remove.iter().for_each(|&i| s[i] = false);
            for &i in &remove {
                for j in set_neighbours(&s, width, height, i).collect::<Vec<_>>() {
                    enqueue(j, &mut queued, &mut queues);
                }
            }
        }
        if !changed {
            return s;
        }
    }
}

/// Centreline Dice: 2·Tprec·Tsens / (Tprec + Tsens), Tprec the share of the segmentation's
/// skeleton inside the reference, Tsens the share of the reference's skeleton inside the segmentation.
/// Empty masks as in the module documentation. Zhang–Suen erases some small shapes entirely (a
/// 2×2 square loses all four pixels in one sub-iteration), so a mask whose skeleton vanishes
/// stands for its own skeleton.
pub fn cl_dice(segmentation: &[bool], reference: &[bool], width: usize, height: usize) -> f64 {
    match (segmentation.iter().any(|&v| v), reference.iter().any(|&v| v)) {
        (false, false) => return 1.0,
        (false, true) | (true, false) => return 0.0,
        (true, true) => {}
    }
    let centreline = |mask: &[bool]| {
        let s = skeleton(mask, width, height);
        if s.iter().any(|&v| v) { s } else { mask.to_vec() }
    };
    let (ss, rs) = (centreline(segmentation), centreline(reference));
    let share = |skel: &[bool], inside: &[bool]| {
        skel.iter().zip(inside).filter(|(s, i)| **s && **i).count() as f64 / skel.iter().filter(|&&v| v).count() as f64
    };
    let (precision, sensitivity) = (share(&ss, reference), share(&rs, segmentation));
    if precision + sensitivity > 0.0 { 2.0 * precision * sensitivity / (precision + sensitivity) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(width: usize, height: usize, x0: usize, y0: usize, x1: usize, y1: usize) -> Vec<bool> {
        (0..width * height).map(|i| (x0..x1).contains(&(i % width)) && (y0..y1).contains(&(i / width))).collect()
    }

    #[test]
    fn a_square_shifted_by_two_pixels_has_the_distances_counted_by_hand() {
        // A 6×6 square at x 4..10 and the same at x 6..12 (rows 4..10) in a 16×14 image. Each
        // border has 20 pixels: its left and right columns of 6 and 4 more in the top and bottom rows.
        let (a, b) = (rect(16, 14, 4, 4, 10, 10), rect(16, 14, 6, 4, 12, 10));
        assert_eq!(border(&a, 16, 14).iter().filter(|&&v| v).count(), 20);
        let s = surface_scores(&a, &b, 16, 14, 1.0);
        // From a's border to b's (b is a moved right by 2): a's top row x 4..9 lies 2, 1, 0, 0, 0, 0
        // from b's top row (x 6..11), the bottom row likewise; a's left column (x 4, y 5..8) is 2
        // from b's left column; a's right column (x 9) is 1, 2, 2, 1 from b's top row, right
        // column or bottom row. Sum 3 + 3 + 8 + 6 = 20 over 20 pixels; the reverse is the mirror image.
        assert!((s.asd - 1.0).abs() < 1e-12, "{s:?}");
        assert!((s.asd_reverse - 1.0).abs() < 1e-12, "{s:?}");
        assert!((s.assd - 1.0).abs() < 1e-12);
        // 40 distances: 16 of 2, 8 of 1, 16 of 0; the 95th percentile (rank 37.05 of 0..39) is 2.
        assert_eq!(s.hd95, 2.0);
        // Within 1 px: 24 of the 40.
        assert!((s.surface_dice - 24.0 / 40.0).abs() < 1e-12, "{s:?}");
    }

    #[test]
    fn empty_masks_get_the_best_values_when_both_are_empty_and_the_worst_when_one_is() {
        let (none, some) = (vec![false; 48], rect(8, 6, 2, 2, 5, 5));
        let both = surface_scores(&none, &none, 8, 6, 1.0);
        assert_eq!((both.hd95, both.assd, both.surface_dice, both.cl_dice), (0.0, 0.0, 1.0, 1.0));
        // An 8 × 6 image's diagonal is 10 px, whichever mask is the empty one.
        for one in [surface_scores(&none, &some, 8, 6, 1.0), surface_scores(&some, &none, 8, 6, 1.0)] {
            assert_eq!((one.hd95, one.asd, one.asd_reverse, one.assd, one.surface_dice, one.cl_dice), (10.0, 10.0, 10.0, 10.0, 0.0, 0.0));
        }
        let same = surface_scores(&some, &some, 8, 6, 0.0);
        assert_eq!((same.hd95, same.assd, same.surface_dice, same.cl_dice), (0.0, 0.0, 1.0, 1.0));
    }

    #[test]
    fn a_rater_who_finds_nothing_on_half_the_images_scores_worse_than_one_who_draws_every_object_too_large() {
        // Four 64 × 64 images with one square each; `good` draws every square 1 px too large on
        // every side,
        // `missing` the same masks but nothing on images 2 and 3 (the case).
        let truth: Vec<Vec<u8>> = (0..4).map(|i| square(64, 10 + 4 * i, 30)).collect();
        let good: Vec<Vec<u8>> = (0..4).map(|i| square(64, 9 + 4 * i, 32)).collect();
        let missing: Vec<Vec<u8>> = good.iter().enumerate().map(|(i, m)| if i < 2 { m.clone() } else { vec![0; m.len()] }).collect();
        let sizes = [(64, 64); 4];
        let score = |maps: &[Vec<u8>]| class_surfaces(&slices(maps), &slices(&truth), &sizes, 2, 1.0).remove(0);
        let (good, missing) = (score(&good), score(&missing));
        assert_eq!((good.empty, missing.empty), (0, 2));
        assert!((good.mean.hd95 - 1.0).abs() < 1e-12 && (good.mean.assd - 1.0).abs() < 0.05, "{good:?}");
        // Two images at 1 px, two at the 90.5 px diagonal.
        let diagonal = 64.0 * std::f64::consts::SQRT_2;
        assert!((missing.mean.hd95 - (2.0 * 1.0 + 2.0 * diagonal) / 4.0).abs() < 1e-9, "{missing:?}");
        assert!(missing.mean.hd95 > good.mean.hd95 && missing.mean.assd > good.mean.assd);
        assert!(missing.mean.surface_dice < good.mean.surface_dice && missing.mean.cl_dice < good.mean.cl_dice);
        // Truth empty and a prediction drawn: as bad as a miss.
        let none = vec![0u8; 64 * 64];
        let drawn = class_surfaces(&[&good_square()], &[&none], &[(64, 64)], 2, 1.0).remove(0);
        assert_eq!((drawn.empty, drawn.mean.hd95), (1, diagonal));
    }

    fn slices(maps: &[Vec<u8>]) -> Vec<&[u8]> {
        maps.iter().map(Vec::as_slice).collect()
    }

    /// A label map of `side` × `side` px with class 1 on the square at (`at`, `at`) of side `size`.
    fn square(side: usize, at: usize, size: usize) -> Vec<u8> {
        rect(side, side, at, at, at + size, at + size).into_iter().map(u8::from).collect()
    }

    fn good_square() -> Vec<u8> {
        square(64, 9, 32)
    }

    #[test]
    fn a_thick_bar_thins_to_its_centreline_and_a_broken_line_loses_cl_dice() {
        // A 3-px-thick horizontal bar thins to one row.
        let bar = rect(20, 9, 2, 3, 18, 6);
        let skel = skeleton(&bar, 20, 9);
        let rows: Vec<usize> = (0..9).filter(|y| (0..20).any(|x| skel[y * 20 + x])).collect();
        assert_eq!(rows, [4], "one centre row");
        // A one-pixel line against the same line with a gap of 4 px in the middle: the broken
        // line's skeleton lies inside the whole one (precision 1); the whole line's skeleton is
        // inside the broken one except the gap (sensitivity 12/16 of its 16 pixels).
        let line = rect(20, 5, 2, 2, 18, 3);
        let mut broken = line.clone();
        for x in 8..12 {
            broken[2 * 20 + x] = false;
        }
        let c = cl_dice(&broken, &line, 20, 5);
        let (precision, sensitivity) = (1.0, 12.0 / 16.0);
        assert!((c - 2.0 * precision * sensitivity / (precision + sensitivity)).abs() < 1e-12, "{c}");
    }

    /// Zhang–Suen as the paper states it: every pixel checked in every sub-iteration.
    fn full_scan_skeleton(mask: &[bool], width: usize, height: usize) -> Vec<bool> {
        let mut s = mask.to_vec();
        loop {
            let mut changed = false;
            for pass in 0..2 {
                let remove: Vec<usize> = (0..s.len()).filter(|&i| s[i] && thins(&s, width, height, i, pass)).collect();
                changed |= !remove.is_empty();
                remove.into_iter().for_each(|i| s[i] = false);
            }
            if !changed {
                return s;
            }
        }
    }

    #[test]
    fn the_frontier_skeleton_is_the_full_scans_pixel_for_pixel() {
        // Random unions of discs and bars of every thickness, touching the image's edges too.
        let (width, height) = (61, 47);
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        for _ in 0..40 {
            let mut mask = vec![false; width * height];
            for _ in 0..1 + next(6) {
                let (cx, cy, r) = (next(width) as isize, next(height) as isize, 1 + next(14) as isize);
                let (bar, thick) = (next(2) == 0, 1 + next(6) as isize);
                for (i, m) in mask.iter_mut().enumerate() {
                    let (dx, dy) = ((i % width) as isize - cx, (i / width) as isize - cy);
                    *m |= if bar { dy.abs() < thick && dx.abs() <= 3 * r } else { dx * dx + dy * dy <= r * r };
                }
            }
            assert_eq!(skeleton(&mask, width, height), full_scan_skeleton(&mask, width, height));
        }
    }

    #[test]
    fn a_speck_whose_skeleton_vanishes_still_counts() {
        let (speck, none) = (rect(8, 8, 3, 3, 5, 5), vec![false; 64]);
        assert!(skeleton(&speck, 8, 8).iter().all(|&v| !v), "Zhang–Suen erases a 2×2 square");
        assert_eq!(cl_dice(&speck, &none, 8, 8), 0.0, "a speck against nothing is not a match");
        assert_eq!(cl_dice(&speck, &speck, 8, 8), 1.0);
    }
}
