//! Morphology and connected components on label maps: the tools both the label-source
//! simulators and the heuristic labeller build on.

use crate::raster::{ClassId, LabelMap};

/// Offsets (dx, dy) within Euclidean distance `radius`, nearest first, origin excluded.
pub fn disc_offsets(radius: f32) -> Vec<(i32, i32)> {
    let r = radius.ceil() as i32;
    let mut offsets: Vec<(i32, i32)> = (-r..=r)
        .flat_map(|dy| (-r..=r).map(move |dx| (dx, dy)))
        .filter(|&(dx, dy)| (dx, dy) != (0, 0) && ((dx * dx + dy * dy) as f32) <= radius * radius + 1e-4)
        .collect();
    offsets.sort_by_key(|&(dx, dy)| (dx * dx + dy * dy, dy, dx));
    offsets
}

fn neighbour(map: &LabelMap, x: usize, y: usize, (dx, dy): (i32, i32)) -> Option<ClassId> {
    let nx = x as i64 + i64::from(dx);
    let ny = y as i64 + i64::from(dy);
    if nx < 0 || ny < 0 || nx >= map.width as i64 || ny >= map.height as i64 {
        return None;
    }
    Some(map.labels[ny as usize * map.width + nx as usize])
}

/// Grows every foreground class by `radius` px into the background (never over another
/// class): a background pixel takes the class of its nearest foreground pixel within the disc.
pub fn dilate(map: &LabelMap, radius: f32) -> LabelMap {
    dilate_classes(map, radius, |_| true)
}

/// Shrinks every foreground class by `radius` px: a foreground pixel with any pixel of
/// another class (or the image border) within the disc becomes background.
pub fn erode(map: &LabelMap, radius: f32) -> LabelMap {
    erode_classes(map, radius, |_| true)
}

/// [`dilate`] for the foreground classes `grows` accepts; the others neither grow nor are grown over.
pub fn dilate_classes(map: &LabelMap, radius: f32, grows: impl Fn(ClassId) -> bool) -> LabelMap {
    let offsets = disc_offsets(radius);
    let mut out = map.clone();
    for y in 0..map.height {
        for x in 0..map.width {
            if map.get(x, y) != 0 {
                continue;
            }
            if let Some(c) = offsets.iter().find_map(|&o| neighbour(map, x, y, o).filter(|&c| c != 0 && grows(c))) {
                out.labels[y * map.width + x] = c;
            }
        }
    }
    out
}

/// [`erode`] for the foreground classes `shrinks` accepts; the others keep every pixel.
pub fn erode_classes(map: &LabelMap, radius: f32, shrinks: impl Fn(ClassId) -> bool) -> LabelMap {
    let offsets = disc_offsets(radius);
    let mut out = map.clone();
    for y in 0..map.height {
        for x in 0..map.width {
            let c = map.get(x, y);
            if c == 0 || !shrinks(c) {
                continue;
            }
            if offsets.iter().any(|&o| neighbour(map, x, y, o) != Some(c)) {
                out.labels[y * map.width + x] = 0;
            }
        }
    }
    out
}

/// Morphological opening (erode, then dilate) of a binary mask by a disc.
pub fn open_mask(mask: &[bool], width: usize, height: usize, radius: f32) -> Vec<bool> {
    let as_map = LabelMap { width, height, labels: mask.iter().map(|&m| u8::from(m)).collect() };
    let opened = dilate(&erode(&as_map, radius), radius);
    opened.labels.iter().map(|&l| l != 0).collect()
}

/// Morphological closing (dilate, then erode) of a binary mask by a disc.
pub fn close_mask(mask: &[bool], width: usize, height: usize, radius: f32) -> Vec<bool> {
    let as_map = LabelMap { width, height, labels: mask.iter().map(|&m| u8::from(m)).collect() };
    let closed = erode(&dilate(&as_map, radius), radius);
    closed.labels.iter().map(|&l| l != 0).collect()
}

/// Shape statistics of one connected component.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    /// Pixel count.
    pub area: u32,
    /// Count of pixel edges between the component and anything else (4-neighbourhood).
    pub perimeter: u32,
    /// Bounding box: min x, min y, max x, max y (inclusive).
    pub bbox: [usize; 4],
}

impl Component {
    /// Area over half the perimeter: about the structure's width for lines, grows with size for blobs.
    pub fn thickness(&self) -> f32 {
        2.0 * self.area as f32 / self.perimeter.max(1) as f32
    }

    /// Share of the bounding box the component fills (1 for an axis-aligned rectangle).
    pub fn fill(&self) -> f32 {
        let w = self.bbox[2] - self.bbox[0] + 1;
        let h = self.bbox[3] - self.bbox[1] + 1;
        self.area as f32 / (w * h) as f32
    }
}

/// Connected components (8-connectivity) of the pixels where `member` is true.
/// Returns the component index per pixel (`u32::MAX` outside) and the components.
pub fn components(member: &[bool], width: usize, height: usize) -> (Vec<u32>, Vec<Component>) {
    let mut ids = vec![u32::MAX; member.len()];
    let mut found = Vec::new();
    let mut stack = Vec::new();
    for start in 0..member.len() {
        if !member[start] || ids[start] != u32::MAX {
            continue;
        }
        let id = found.len() as u32;
        let mut comp = Component { area: 0, perimeter: 0, bbox: [usize::MAX, usize::MAX, 0, 0] };
        ids[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            comp.area += 1;
            comp.bbox = [comp.bbox[0].min(x), comp.bbox[1].min(y), comp.bbox[2].max(x), comp.bbox[3].max(y)];
            for (dx, dy) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)] {
                let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 || !member[ny as usize * width + nx as usize] {
                    comp.perimeter += 1;
                }
            }
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                        continue;
                    }
                    let j = ny as usize * width + nx as usize;
                    if member[j] && ids[j] == u32::MAX {
                        ids[j] = id;
                        stack.push(j);
                    }
                }
            }
        }
        found.push(comp);
    }
    (ids, found)
}

/// Otsu's threshold on values in [0, 1] (256 bins): the cut that maximises between-class variance.
pub fn otsu_threshold(values: &[f32]) -> f32 {
    let mut hist = [0u64; 256];
    for &v in values {
        hist[(v.clamp(0.0, 1.0) * 255.0).round() as usize] += 1;
    }
    let total = values.len() as f64;
    let sum_all: f64 = hist.iter().enumerate().map(|(i, &h)| i as f64 * h as f64).sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0.0f64, 0.0f64, -1.0f64, 0usize);
    for (t, &h) in hist.iter().enumerate() {
        w0 += h as f64;
        sum0 += t as f64 * h as f64;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (sum_all - sum0) / w1);
        let between = w0 * w1 * (m0 - m1).powi(2);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    (best_t as f32 + 0.5) / 255.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(size: usize, lo: usize, hi: usize) -> LabelMap {
        let mut m = LabelMap::filled(size, size, 0);
        for y in lo..hi {
            for x in lo..hi {
                m.labels[y * size + x] = 1;
            }
        }
        m
    }

    #[test]
    fn dilating_a_square_by_one_adds_its_perimeter() {
        let m = square(20, 5, 15);
        let d = dilate(&m, 1.0);
        // A 10×10 square grows by one pixel on each side, corners excluded by the disc.
        assert_eq!(d.class_counts(2)[1], 100 + 4 * 10);
        assert_eq!(erode(&d, 1.0), m, "closing a square gives it back");
    }

    #[test]
    fn one_class_grows_and_shrinks_while_the_other_keeps_every_pixel() {
        let mut m = square(20, 5, 15);
        for y in 2..4 {
            for x in 5..15 {
                m.labels[y * 20 + x] = 2; // a 10×2 bar of class 2 above, one pixel away
            }
        }
        let grown = dilate_classes(&m, 1.0, |c| c == 1);
        // Class 1 takes its perimeter (the row between the two included), class 2 is untouched.
        assert_eq!(grown.class_counts(3)[1..], [140, 20]);
        let shrunk = erode_classes(&m, 1.0, |c| c == 2);
        assert_eq!(shrunk.class_counts(3)[1..], [100, 0], "a 2 px bar eroded by 1 px is gone; the square stays");
    }

    #[test]
    fn components_count_and_shape() {
        let mut mask = vec![false; 100];
        for x in 0..10 {
            mask[20 + x] = true; // a 10×1 line
        }
        for y in 5..8 {
            for x in 5..8 {
                mask[y * 10 + x] = true; // a 3×3 square
            }
        }
        let (_, comps) = components(&mask, 10, 10);
        assert_eq!(comps.len(), 2);
        assert_eq!(comps[0].area, 10);
        assert!(comps[0].thickness() < 1.1);
        assert!((comps[1].fill() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn otsu_splits_two_modes() {
        let values: Vec<f32> = (0..100).map(|i| if i < 50 { 0.2 } else { 0.8 }).collect();
        let t = otsu_threshold(&values);
        assert!(t > 0.2 && t < 0.8, "{t}");
    }
}
