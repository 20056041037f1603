//! The procedural world's model: its settings, the objects it draws with their attributes, and a
//! scene (image, exact truth, per-object attributes). `generate.rs` draws them.

use serde::{Deserialize, Serialize};

use crate::morph;
use crate::raster::{ClassId, ClassTable, Image, LabelMap};

/// A kind of object the world can draw; its class index is its position in the world's class list plus one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// Rounded, cell-like shapes.
    Blob,
    /// Lines, cracks and vessels one to two pixels wide.
    Thin,
    /// Rectangles.
    Box,
}

impl ObjectKind {
    /// The class name used in manifests and reports.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Blob => "blob",
            ObjectKind::Thin => "thin",
            ObjectKind::Box => "box",
        }
    }

    /// Colour weights of the darkening: classes differ a little in hue, so colour alone is a weak cue.
    pub(crate) fn tint(self) -> [f32; 3] {
        match self {
            ObjectKind::Blob => [1.0, 0.82, 0.9],
            ObjectKind::Thin => [0.85, 0.92, 1.0],
            ObjectKind::Box => [0.95, 1.0, 0.8],
        }
    }
}

/// Rendering style: the real-looking style, or the flat synthetic one (a domain gap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// Noise, illumination gradient, shadows and blur as configured.
    Real,
    /// Flat colours, no nuisances.
    Synthetic,
}

/// Settings of the world generator; every knob has a default suited to the quick study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldConfig {
    /// Image width and height in pixels.
    pub size: usize,
    /// Object classes drawn, after `background` (class 0).
    pub classes: Vec<ObjectKind>,
    /// Fewest objects per image.
    pub min_objects: usize,
    /// Most objects per image.
    pub max_objects: usize,
    /// Share of objects drawn with low contrast against the background.
    pub low_contrast: f32,
    /// Standard deviation of per-pixel texture noise.
    pub noise: f32,
    /// Brightness change across the image from the illumination gradient.
    pub illumination: f32,
    /// Share of objects that cast a shadow on the background.
    pub shadows: f32,
    /// Gaussian blur sigma in pixels (0 = sharp).
    pub blur: f32,
    /// Share of blobs placed touching an earlier object.
    pub touching: f32,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            size: 64,
            classes: vec![ObjectKind::Blob, ObjectKind::Thin],
            min_objects: 3,
            max_objects: 6,
            low_contrast: 0.25,
            noise: 0.03,
            illumination: 0.1,
            shadows: 0.0,
            blur: 0.0,
            touching: 0.2,
        }
    }
}

impl WorldConfig {
    /// Class names, background first.
    pub fn class_names(&self) -> Vec<String> {
        std::iter::once("background".to_string()).chain(self.classes.iter().map(|k| k.name().to_string())).collect()
    }

    /// The class table of the world: `background`, then the object classes in order.
    pub fn class_table(&self) -> ClassTable {
        ClassTable::new(self.class_names())
    }

    /// Number of classes including background.
    pub fn num_classes(&self) -> usize {
        self.classes.len() + 1
    }

    /// The class index of an object kind, if the world draws it.
    pub fn class_of(&self, kind: ObjectKind) -> Option<ClassId> {
        self.classes.iter().position(|&k| k == kind).map(|p| (p + 1) as ClassId)
    }

    /// Every problem with the settings, as (key, message) pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |key: &str, msg: String| out.push((key.to_string(), msg));
        if !(16..=1024).contains(&self.size) {
            bad("size", format!("must be between 16 and 1024 pixels, got {}", self.size));
        }
        if self.classes.is_empty() {
            bad("classes", "needs at least one object class (blob, thin, box)".into());
        }
        let mut seen = self.classes.clone();
        seen.sort_by_key(|k| k.name());
        seen.dedup();
        if seen.len() != self.classes.len() {
            bad("classes", "lists a class twice".into());
        }
        if self.min_objects > self.max_objects {
            bad("min_objects", format!("({}) exceeds max_objects ({})", self.min_objects, self.max_objects));
        }
        if self.max_objects > 64 {
            bad("max_objects", format!("must be at most 64, got {}", self.max_objects));
        }
        for (key, value) in [("low_contrast", self.low_contrast), ("shadows", self.shadows), ("touching", self.touching)] {
            if !(0.0..=1.0).contains(&value) {
                bad(key, format!("is a share and must lie in [0, 1], got {value}"));
            }
        }
        for (key, value, max) in [("noise", self.noise, 0.5), ("illumination", self.illumination, 0.8), ("blur", self.blur, 5.0)] {
            if !(0.0..=max).contains(&value) {
                bad(key, format!("must lie in [0, {max}], got {value}"));
            }
        }
        out
    }
}

/// What is known about one drawn object, for subgroup analysis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectAttributes {
    /// Instance number in the scene's instance map (1-based).
    pub instance: u16,
    /// The object's class.
    pub class: ClassId,
    /// Visible pixels in the truth.
    pub area: u32,
    /// Darkening against the local background (grey levels in [0, 1]).
    pub contrast: f32,
    /// Visible area over half the visible perimeter: about the width of thin objects.
    pub thinness: f32,
    /// Drawn with low contrast on purpose.
    pub low_contrast: bool,
    /// Touches another object.
    pub touching: bool,
    /// Casts a shadow on the background.
    pub shadowed: bool,
}

/// What is exactly known about an image: its labels, objects and shadows.
#[derive(Clone, Debug, PartialEq)]
pub struct Truth {
    /// The exact label of every pixel.
    pub labels: LabelMap,
    /// Object instance per pixel (0 = background), indexing `objects` from 1.
    pub instances: Vec<u16>,
    /// Attributes of every object.
    pub objects: Vec<ObjectAttributes>,
    /// Background pixels darkened by a cast shadow.
    pub shadow: Vec<bool>,
}

impl Truth {
    /// Truth known only as a label map (a folder's truth masks): objects are the connected
    /// components of each class, their contrast measured on the image against a 2-px ring around them.
    pub fn from_labels(labels: LabelMap, image: &Image) -> Truth {
        let (w, h) = (labels.width, labels.height);
        let mut instances = vec![0u16; labels.len()];
        let mut objects = Vec::new();
        let classes = labels.labels.iter().copied().max().unwrap_or(0);
        for c in 1..=classes {
            let member: Vec<bool> = labels.labels.iter().map(|&l| l == c).collect();
            let (ids, comps) = morph::components(&member, w, h);
            let first = objects.len();
            for comp in &comps {
                if objects.len() >= usize::from(u16::MAX) - 1 {
                    break;
                }
                objects.push(ObjectAttributes {
                    instance: (objects.len() + 1) as u16,
                    class: c,
                    area: comp.area,
                    contrast: 0.0,
                    thinness: comp.thickness(),
                    low_contrast: false,
                    touching: false,
                    shadowed: false,
                });
            }
            for (i, &id) in ids.iter().enumerate() {
                if id != u32::MAX && first + (id as usize) < objects.len() {
                    instances[i] = (first + id as usize + 1) as u16;
                }
            }
        }
        mark_touching(&instances, w, h, &mut objects);
        measure_contrast(&instances, image, &mut objects);
        Truth { labels, instances, objects, shadow: vec![false; w * h] }
    }

    /// The attributes of the object at pixel `i`, if any.
    pub fn object_at(&self, i: usize) -> Option<&ObjectAttributes> {
        let inst = *self.instances.get(i)?;
        (inst != 0).then(|| &self.objects[usize::from(inst) - 1])
    }
}

/// Objects fainter than this (grey levels against their surroundings) count as low-contrast
/// when contrast is measured rather than drawn.
pub const LOW_CONTRAST_BELOW: f32 = 0.2;

fn measure_contrast(instances: &[u16], image: &Image, objects: &mut [ObjectAttributes]) {
    let (w, h) = (image.width, image.height);
    let grey = image.grey();
    let mut inside = vec![(0.0f64, 0u32); objects.len()];
    let mut ring = vec![(0.0f64, 0u32); objects.len()];
    let offsets = morph::disc_offsets(2.0);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let inst = instances[i];
            if inst != 0 {
                let o = usize::from(inst) - 1;
                inside[o].0 += f64::from(grey[i]);
                inside[o].1 += 1;
                continue;
            }
            // a background pixel near an object belongs to that object's ring
            let near = offsets.iter().find_map(|&(dx, dy)| {
                let (nx, ny) = (x as i64 + i64::from(dx), y as i64 + i64::from(dy));
                (nx >= 0 && ny >= 0 && nx < w as i64 && ny < h as i64).then(|| instances[ny as usize * w + nx as usize]).filter(|&n| n != 0)
            });
            if let Some(n) = near {
                let o = usize::from(n) - 1;
                ring[o].0 += f64::from(grey[i]);
                ring[o].1 += 1;
            }
        }
    }
    for (o, obj) in objects.iter_mut().enumerate() {
        if inside[o].1 > 0 && ring[o].1 > 0 {
            obj.contrast = ((ring[o].0 / f64::from(ring[o].1)) - (inside[o].0 / f64::from(inside[o].1))).abs() as f32;
            obj.low_contrast = obj.contrast < LOW_CONTRAST_BELOW;
        }
    }
}

/// One image: generated by the world (with exact truth) or read from a folder (truth optional).
#[derive(Clone, Debug)]
pub struct Scene {
    /// Position of the scene in its world or folder; the stable index of everything derived from it.
    pub index: u32,
    /// Stable name: `s00012` for world scenes, the file stem for folder images.
    pub name: String,
    /// The image.
    pub image: Image,
    /// The exact truth, when known.
    pub truth: Option<Truth>,
    /// The rendering style.
    pub style: Style,
    /// Some object carries the spurious-cue tint.
    pub cue: bool,
}

impl Scene {
    /// The scene id used in file names and split lists.
    pub fn id(&self) -> &str {
        &self.name
    }

    /// The truth's label map, if the truth is known.
    pub fn truth_labels(&self) -> Option<&LabelMap> {
        self.truth.as_ref().map(|t| &t.labels)
    }
}

/// Which objects of a generated image carry the spurious cue: a tint of their colour that keeps
/// their brightness (and so their contrast), local to the objects, so a segmenter can learn to
/// rely on it wherever the objects are (a corner marker would lie outside most receptive fields).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CueRule {
    /// No object.
    Absent,
    /// Every object (the counterfactual twin of an image without it).
    Present,
    /// Every object with probability `p` per image, independent of content (decorrelated test images).
    Random(f32),
    /// Correlated with a class: each object of `class` is tinted with probability `strength`,
    /// each other object with probability `1 - strength`.
    WithClass {
        /// The class the tint goes with.
        class: ClassId,
        /// 1 = exactly the class's objects, 0.5 = independent of the class.
        strength: f32,
    },
}

/// The id of scene `index`, as written in split files and PNG names.
pub fn scene_id(index: u32) -> String {
    format!("s{index:05}")
}

/// Marks every object with a 4-neighbour pixel of another object as `touching`.
pub(crate) fn mark_touching(instances: &[u16], w: usize, h: usize, objects: &mut [ObjectAttributes]) {
    for y in 0..h {
        for x in 0..w {
            let i = instances[y * w + x];
            if i == 0 {
                continue;
            }
            for (nx, ny) in [(x + 1, y), (x, y + 1)] {
                if nx < w && ny < h {
                    let n = instances[ny * w + nx];
                    if n != 0 && n != i {
                        objects[usize::from(i) - 1].touching = true;
                        objects[usize::from(n) - 1].touching = true;
                    }
                }
            }
        }
    }
}
