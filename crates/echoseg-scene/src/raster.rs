//! Images and label maps: the two rasters every stage exchanges.

/// Class index of a pixel; 0 is always `background`.
pub type ClassId = u8;

/// An RGB image with values in [0, 1], stored channel-planar (3 × height × width),
/// the layout the networks consume.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Channel-planar values: red plane, then green, then blue.
    pub pixels: Vec<f32>,
}

impl Image {
    /// An image filled with one colour.
    pub fn filled(width: usize, height: usize, rgb: [f32; 3]) -> Self {
        let plane = width * height;
        let mut pixels = vec![0.0; 3 * plane];
        for (c, value) in rgb.iter().enumerate() {
            pixels[c * plane..(c + 1) * plane].fill(*value);
        }
        Self { width, height, pixels }
    }

    /// Number of pixels in one channel.
    pub fn plane(&self) -> usize {
        self.width * self.height
    }

    /// The value of channel `c` at pixel index `i`.
    pub fn at(&self, c: usize, i: usize) -> f32 {
        self.pixels[c * self.plane() + i]
    }

    /// Sets channel `c` at pixel index `i`.
    pub fn set(&mut self, c: usize, i: usize, value: f32) {
        let plane = self.plane();
        self.pixels[c * plane + i] = value;
    }

    /// Mean of the three channels per pixel: what classic algorithms threshold.
    pub fn grey(&self) -> Vec<f32> {
        let plane = self.plane();
        (0..plane).map(|i| (self.pixels[i] + self.pixels[plane + i] + self.pixels[2 * plane + i]) / 3.0).collect()
    }

    /// Interleaved 8-bit RGB, for PNG output.
    pub fn to_rgb8(&self) -> Vec<u8> {
        let plane = self.plane();
        let mut out = Vec::with_capacity(3 * plane);
        for i in 0..plane {
            for c in 0..3 {
                out.push((self.pixels[c * plane + i].clamp(0.0, 1.0) * 255.0).round() as u8);
            }
        }
        out
    }

    /// Builds an image from interleaved 8-bit RGB.
    pub fn from_rgb8(width: usize, height: usize, rgb: &[u8]) -> Self {
        let plane = width * height;
        let mut pixels = vec![0.0; 3 * plane];
        for i in 0..plane {
            for c in 0..3 {
                pixels[c * plane + i] = f32::from(rgb[3 * i + c]) / 255.0;
            }
        }
        Self { width, height, pixels }
    }
}

/// A map of class indices, one byte per pixel, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelMap {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major class indices.
    pub labels: Vec<ClassId>,
}

impl LabelMap {
    /// A map where every pixel is `class`.
    pub fn filled(width: usize, height: usize, class: ClassId) -> Self {
        Self { width, height, labels: vec![class; width * height] }
    }

    /// The class at (x, y).
    pub fn get(&self, x: usize, y: usize) -> ClassId {
        self.labels[y * self.width + x]
    }

    /// Number of pixels.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the map has no pixels.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixel count per class, for `classes` classes (values beyond are ignored).
    pub fn class_counts(&self, classes: usize) -> Vec<u64> {
        let mut counts = vec![0u64; classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }
}

/// The classes of a dataset, background first; a class's index is its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassTable {
    names: Vec<String>,
}

impl ClassTable {
    /// A table from names; the first is the background.
    pub fn new(names: Vec<String>) -> Self {
        Self { names }
    }

    /// The class names, background first.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of classes including background.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True for a table without classes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The index of the class called `name`.
    pub fn index_of(&self, name: &str) -> Option<ClassId> {
        self.names.iter().position(|n| n == name).map(|i| i as ClassId)
    }

    /// The name of class `c` (or its number when out of range).
    pub fn name(&self, c: ClassId) -> String {
        self.names.get(usize::from(c)).cloned().unwrap_or_else(|| format!("class {c}"))
    }
}
