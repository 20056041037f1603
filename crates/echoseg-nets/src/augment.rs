//! Random views of a pool image for the self-supervised objectives (mean teacher, BYOL):
//! geometric changes that move pixels and photometric ones that change their values.

use echoseg_scene::{Image, Rng};
use serde::{Deserialize, Serialize};

/// A random change applied to a pool image before a network sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Augmentation {
    /// Horizontal and vertical flips (geometric: drawn once per image, shared by both views).
    Flip,
    /// A shift of up to 4 px with the uncovered border left unlabelled (geometric, shared).
    Shift,
    /// Contrast × [0.8, 1.2] and brightness ± 0.1 (photometric: drawn per view).
    Jitter,
    /// A 3 × 3 binomial blur, half of the time (photometric: drawn per view).
    Blur,
}

impl Augmentation {
    /// Geometric augmentations move pixels, so both views must share them for the teacher's
    /// labels to line up with the student's pixels.
    pub fn is_geometric(self) -> bool {
        matches!(self, Augmentation::Flip | Augmentation::Shift)
    }

    /// The manifest name.
    pub fn name(self) -> &'static str {
        match self {
            Augmentation::Flip => "flip",
            Augmentation::Shift => "shift",
            Augmentation::Jitter => "jitter",
            Augmentation::Blur => "blur",
        }
    }
}

/// The geometry drawn for one pool image: flips and shift.
#[derive(Clone, Copy, Default)]
pub(crate) struct Geometry {
    pub(crate) flip_x: bool,
    pub(crate) flip_y: bool,
    pub(crate) dx: i64,
    pub(crate) dy: i64,
}

impl Geometry {
    pub(crate) fn draw(view: &[Augmentation], rng: &mut Rng) -> Self {
        let mut g = Geometry::default();
        if view.contains(&Augmentation::Flip) {
            (g.flip_x, g.flip_y) = (rng.chance(0.5), rng.chance(0.5));
        }
        if view.contains(&Augmentation::Shift) {
            (g.dx, g.dy) = (rng.int(-4, 4), rng.int(-4, 4));
        }
        g
    }

    /// The source pixel of output pixel (`x`, `y`), `None` where the shift uncovered the border.
    pub(crate) fn source(&self, x: usize, y: usize, w: usize, h: usize) -> Option<usize> {
        let (sx, sy) = (x as i64 - self.dx, y as i64 - self.dy);
        if sx < 0 || sy < 0 || sx >= w as i64 || sy >= h as i64 {
            return None;
        }
        let sx = if self.flip_x { w as i64 - 1 - sx } else { sx };
        let sy = if self.flip_y { h as i64 - 1 - sy } else { sy };
        Some(sy as usize * w + sx as usize)
    }
}

/// One view of `image` (planar RGB) under `geometry` and the photometric augmentations of `view`.
pub(crate) fn view_of(image: &Image, geometry: &Geometry, view: &[Augmentation], rng: &mut Rng) -> Vec<f32> {
    let (w, h) = (image.width, image.height);
    let plane = w * h;
    let mut x = vec![0.0f32; 3 * plane];
    let mut covered = vec![false; plane];
    for y in 0..h {
        for xx in 0..w {
            if let Some(q) = geometry.source(xx, y, w, h) {
                covered[y * w + xx] = true;
                for c in 0..3 {
                    x[c * plane + y * w + xx] = image.pixels[c * plane + q];
                }
            }
        }
    }
    if view.contains(&Augmentation::Jitter) {
        let (contrast, brightness) = (rng.range(0.8, 1.2), rng.range(-0.1, 0.1));
        for (i, v) in x.iter_mut().enumerate() {
            if covered[i % plane] {
                *v = ((*v - 0.5) * contrast + 0.5 + brightness).clamp(0.0, 1.0);
            }
        }
    }
    if view.contains(&Augmentation::Blur) && rng.chance(0.5) {
        for c in 0..3 {
            let p = &mut x[c * plane..(c + 1) * plane];
            let at = |p: &[f32], x: i64, y: i64| p[y.clamp(0, h as i64 - 1) as usize * w + x.clamp(0, w as i64 - 1) as usize];
            let horizontal: Vec<f32> = (0..plane)
                .map(|i| {
                    (at(p, i as i64 % w as i64 - 1, (i / w) as i64) + 2.0 * p[i] + at(p, i as i64 % w as i64 + 1, (i / w) as i64)) / 4.0
                })
                .collect();
            for (i, out) in p.iter_mut().enumerate() {
                let (xx, y) = ((i % w) as i64, (i / w) as i64);
                *out = (at(&horizontal, xx, y - 1) + 2.0 * horizontal[i] + at(&horizontal, xx, y + 1)) / 4.0;
            }
        }
    }
    x
}
