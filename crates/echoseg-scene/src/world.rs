//! The procedural world: images with exact truth and per-object attributes.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::morph;
use crate::raster::{ClassId, ClassTable, Image, LabelMap};
use crate::rng::Rng;

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
    fn tint(self) -> [f32; 3] {
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

enum Shape {
    Blob { cx: f32, cy: f32, rx: f32, ry: f32, angle: f32, wobble: f32, lobes: f32, phase: f32 },
    Thin { points: [(f32, f32); 3], half_width: f32 },
    Box { cx: f32, cy: f32, hw: f32, hh: f32, angle: f32 },
}

impl Shape {
    fn contains(&self, x: f32, y: f32) -> bool {
        match *self {
            Shape::Blob { cx, cy, rx, ry, angle, wobble, lobes, phase } => {
                let (s, c) = angle.sin_cos();
                let (dx, dy) = (x - cx, y - cy);
                let (u, v) = (c * dx + s * dy, -s * dx + c * dy);
                let theta = v.atan2(u);
                let scale = 1.0 + wobble * (lobes * theta + phase).sin();
                (u / rx).powi(2) + (v / ry).powi(2) <= scale * scale
            }
            Shape::Thin { points, half_width } => {
                let steps = 24;
                let at = |t: f32| {
                    let (a, b, c) = (points[0], points[1], points[2]);
                    let m = 1.0 - t;
                    (m * m * a.0 + 2.0 * m * t * b.0 + t * t * c.0, m * m * a.1 + 2.0 * m * t * b.1 + t * t * c.1)
                };
                (0..steps).any(|i| {
                    let p = at(i as f32 / steps as f32);
                    let q = at((i + 1) as f32 / steps as f32);
                    segment_distance((x, y), p, q) <= half_width
                })
            }
            Shape::Box { cx, cy, hw, hh, angle } => {
                let (s, c) = angle.sin_cos();
                let (dx, dy) = (x - cx, y - cy);
                (c * dx + s * dy).abs() <= hw && (-s * dx + c * dy).abs() <= hh
            }
        }
    }

    fn reach(&self) -> f32 {
        match *self {
            Shape::Blob { rx, ry, wobble, .. } => rx.max(ry) * (1.0 + wobble),
            Shape::Thin { .. } => f32::INFINITY,
            Shape::Box { hw, hh, .. } => (hw * hw + hh * hh).sqrt(),
        }
    }

    fn centre(&self) -> (f32, f32) {
        match *self {
            Shape::Blob { cx, cy, .. } | Shape::Box { cx, cy, .. } => (cx, cy),
            Shape::Thin { points, .. } => points[1],
        }
    }
}

fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (vx, vy) = (b.0 - a.0, b.1 - a.1);
    let len2 = vx * vx + vy * vy;
    let t = if len2 > 0.0 { (((p.0 - a.0) * vx + (p.1 - a.1) * vy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (qx, qy) = (a.0 + t * vx, a.1 + t * vy);
    ((p.0 - qx).powi(2) + (p.1 - qy).powi(2)).sqrt()
}

/// Generates scene `index` of the world with `seed`; the same inputs always give the same scene,
/// and two calls differing only in `cue` give the same scene with and without the tint.
pub fn generate_scene(config: &WorldConfig, seed: u64, index: u32, style: Style, cue: CueRule) -> Scene {
    let mut rng = Rng::with_index(seed, "world", u64::from(index));
    let size = config.size;
    let s = size as f32;
    let scale = s / 64.0;
    let n = rng.int(config.min_objects as i64, config.max_objects as i64) as usize;

    let mut shapes: Vec<(ObjectKind, Shape)> = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = config.classes[rng.int(0, config.classes.len() as i64 - 1) as usize];
        let touch_target = if kind == ObjectKind::Blob && rng.chance(config.touching) {
            shapes.iter().rev().find(|(k, _)| *k != ObjectKind::Thin).map(|(_, sh)| (sh.centre(), sh.reach()))
        } else {
            None
        };
        let shape = match kind {
            ObjectKind::Blob => {
                let (rx, ry) = (rng.range(3.0, 8.0) * scale, rng.range(3.0, 8.0) * scale);
                let (cx, cy) = match touch_target {
                    Some(((tx, ty), reach)) => {
                        let a = rng.range(0.0, std::f32::consts::TAU);
                        let d = reach + rx.min(ry) * 0.9;
                        (tx + d * a.cos(), ty + d * a.sin())
                    }
                    None => (rng.range(0.1 * s, 0.9 * s), rng.range(0.1 * s, 0.9 * s)),
                };
                Shape::Blob {
                    cx,
                    cy,
                    rx,
                    ry,
                    angle: rng.range(0.0, std::f32::consts::PI),
                    wobble: rng.range(0.0, 0.15),
                    lobes: rng.int(2, 5) as f32,
                    phase: rng.range(0.0, std::f32::consts::TAU),
                }
            }
            ObjectKind::Thin => {
                let p0 = (rng.range(0.0, s), rng.range(0.0, s));
                let a = rng.range(0.0, std::f32::consts::TAU);
                let len = rng.range(0.35, 0.8) * s;
                let p2 = (p0.0 + len * a.cos(), p0.1 + len * a.sin());
                let bend = rng.range(-0.25, 0.25) * len;
                let p1 = ((p0.0 + p2.0) / 2.0 - bend * a.sin(), (p0.1 + p2.1) / 2.0 + bend * a.cos());
                Shape::Thin { points: [p0, p1, p2], half_width: rng.range(0.5, 1.1) }
            }
            ObjectKind::Box => Shape::Box {
                cx: rng.range(0.1 * s, 0.9 * s),
                cy: rng.range(0.1 * s, 0.9 * s),
                hw: rng.range(3.0, 8.0) * scale,
                hh: rng.range(3.0, 8.0) * scale,
                angle: rng.range(-0.3, 0.3),
            },
        };
        shapes.push((kind, shape));
    }

    // Later objects are drawn on top of earlier ones.
    let mut instances = vec![0u16; size * size];
    for (i, (_, shape)) in shapes.iter().enumerate() {
        for y in 0..size {
            for x in 0..size {
                if shape.contains(x as f32 + 0.5, y as f32 + 0.5) {
                    instances[y * size + x] = (i + 1) as u16;
                }
            }
        }
    }

    let mut objects: Vec<ObjectAttributes> = shapes
        .iter()
        .enumerate()
        .map(|(i, (kind, _))| {
            let low = rng.chance(config.low_contrast);
            let contrast = if low { rng.range(0.06, 0.12) } else { rng.range(0.35, 0.55) };
            ObjectAttributes {
                instance: (i + 1) as u16,
                class: config.class_of(*kind).unwrap_or(0),
                area: 0,
                contrast,
                thinness: 0.0,
                low_contrast: low,
                touching: false,
                shadowed: style == Style::Real && rng.chance(config.shadows),
            }
        })
        .collect();
    measure_objects(&instances, size, &mut objects);
    // Objects hidden entirely under later ones do not exist in the truth.
    let visible: Vec<bool> = objects.iter().map(|o| o.area > 0).collect();

    let truth = LabelMap {
        width: size,
        height: size,
        labels: instances.iter().map(|&i| if i == 0 { 0 } else { objects[usize::from(i) - 1].class }).collect(),
    };

    let shadow = cast_shadows(&instances, size, &objects, scale);
    let image = render(config, &mut rng, &instances, &shapes, &objects, &shadow, style);
    let (instances, objects) = drop_hidden(instances, objects, &visible);
    let labels = truth;
    let mut cue_rng = Rng::with_index(seed, "cue", u64::from(index));
    let tinted: Vec<bool> = match cue {
        CueRule::Absent => vec![false; objects.len()],
        CueRule::Present => vec![true; objects.len()],
        CueRule::Random(p) => vec![cue_rng.chance(p); objects.len()],
        CueRule::WithClass { class, strength } => {
            objects.iter().map(|o| cue_rng.chance(if o.class == class { strength } else { 1.0 - strength })).collect()
        }
    };
    let mut image = image;
    draw_tint(&mut image, &instances, &tinted);
    let has_cue = tinted.contains(&true);
    Scene { index, name: scene_id(index), image, truth: Some(Truth { labels, instances, objects, shadow }), style, cue: has_cue }
}

/// Renumbers instances so that `objects[i]` is instance `i + 1` again after hidden objects go.
fn drop_hidden(mut instances: Vec<u16>, objects: Vec<ObjectAttributes>, visible: &[bool]) -> (Vec<u16>, Vec<ObjectAttributes>) {
    let mut renumber = vec![0u16; objects.len() + 1];
    let mut kept = Vec::with_capacity(objects.len());
    for (mut o, &v) in objects.into_iter().zip(visible) {
        if v {
            renumber[usize::from(o.instance)] = (kept.len() + 1) as u16;
            o.instance = (kept.len() + 1) as u16;
            kept.push(o);
        }
    }
    for i in &mut instances {
        *i = renumber[usize::from(*i)];
    }
    (instances, kept)
}

/// Chroma added to a tinted object's red, green and blue: it sums to zero, so the object's mean
/// brightness, and its contrast with the background, stay as they were.
const TINT: [f32; 3] = [0.16, -0.08, -0.08];

/// The spurious cue: shifts the colour of the pixels of every object `tinted[instance - 1]` says.
fn draw_tint(image: &mut Image, instances: &[u16], tinted: &[bool]) {
    let plane = image.plane();
    for (p, &i) in instances.iter().enumerate() {
        if i > 0 && tinted[usize::from(i) - 1] {
            for (c, shift) in TINT.iter().enumerate() {
                let v = image.pixels[c * plane + p];
                image.set(c, p, (v + shift).clamp(0.0, 1.0));
            }
        }
    }
}

fn mark_touching(instances: &[u16], w: usize, h: usize, objects: &mut [ObjectAttributes]) {
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

fn measure_objects(instances: &[u16], size: usize, objects: &mut [ObjectAttributes]) {
    mark_touching(instances, size, size, objects);
    let mut perimeter = vec![0u32; objects.len()];
    for y in 0..size {
        for x in 0..size {
            let i = instances[y * size + x];
            if i == 0 {
                continue;
            }
            let o = usize::from(i) - 1;
            objects[o].area += 1;
            for (dx, dy) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)] {
                let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                let n = if nx < 0 || ny < 0 || nx >= size as i64 || ny >= size as i64 {
                    None
                } else {
                    Some(instances[ny as usize * size + nx as usize])
                };
                if n != Some(i) {
                    perimeter[o] += 1;
                }
            }
        }
    }
    for (o, p) in objects.iter_mut().zip(perimeter) {
        o.thinness = 2.0 * o.area as f32 / p.max(1) as f32;
    }
}

fn cast_shadows(instances: &[u16], size: usize, objects: &[ObjectAttributes], scale: f32) -> Vec<bool> {
    let mut shadow = vec![false; size * size];
    let offset = (3.0 * scale).round().max(1.0) as usize;
    for y in 0..size {
        for x in 0..size {
            let i = instances[y * size + x];
            if i == 0 || !objects[usize::from(i) - 1].shadowed {
                continue;
            }
            let (sx, sy) = (x + offset, y + offset);
            if sx < size && sy < size && instances[sy * size + sx] == 0 {
                shadow[sy * size + sx] = true;
            }
        }
    }
    shadow
}

fn render(
    config: &WorldConfig,
    rng: &mut Rng,
    instances: &[u16],
    shapes: &[(ObjectKind, Shape)],
    objects: &[ObjectAttributes],
    shadow: &[bool],
    style: Style,
) -> Image {
    let size = config.size;
    let real = style == Style::Real;
    // The synthetic renderer paints a cooler, flat background: a domain gap by construction.
    let base = if real { [0.78, 0.77, 0.74] } else { [0.84, 0.85, 0.88] };
    let mut image = Image::filled(size, size, base);
    let angle = rng.range(0.0, std::f32::consts::TAU);
    let (gx, gy) = (angle.cos(), angle.sin());
    // Texture: a low-frequency mottle (three random waves) under the per-pixel noise.
    let waves: Vec<(f32, f32, f32)> = (0..3)
        .map(|_| {
            let a = rng.range(0.0, std::f32::consts::TAU);
            let f = rng.range(1.0, 3.0) * std::f32::consts::TAU / size as f32;
            (f * a.cos(), f * a.sin(), rng.range(0.0, std::f32::consts::TAU))
        })
        .collect();
    for y in 0..size {
        for x in 0..size {
            let i = y * size + x;
            let u = (x as f32 / size as f32 - 0.5) * gx + (y as f32 / size as f32 - 0.5) * gy;
            let mottle: f32 = waves.iter().map(|&(fx, fy, p)| (fx * x as f32 + fy * y as f32 + p).sin()).sum::<f32>() / 3.0;
            let light = if real { config.illumination * u + config.noise * mottle } else { 0.0 };
            let inst = instances[i];
            for (c, b) in base.iter().enumerate() {
                let mut v = b + light;
                if inst != 0 {
                    let o = &objects[usize::from(inst) - 1];
                    v -= o.contrast * shapes[usize::from(inst) - 1].0.tint()[c];
                } else if real && shadow[i] {
                    v -= 0.32;
                }
                image.set(c, i, v);
            }
        }
    }
    if real && config.blur > 0.0 {
        image = gaussian_blur(&image, config.blur);
    }
    if real && config.noise > 0.0 {
        for v in &mut image.pixels {
            *v = (*v + config.noise * rng.normal()).clamp(0.0, 1.0);
        }
    } else {
        for v in &mut image.pixels {
            *v = v.clamp(0.0, 1.0);
        }
    }
    // 8-bit values, as a camera would deliver and a PNG stores: a written world reads back identical.
    for v in &mut image.pixels {
        *v = (*v * 255.0).round() / 255.0;
    }
    image
}

fn gaussian_blur(image: &Image, sigma: f32) -> Image {
    let r = (3.0 * sigma).ceil() as i64;
    let kernel: Vec<f32> = (-r..=r).map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let norm: f32 = kernel.iter().sum();
    let (w, h) = (image.width as i64, image.height as i64);
    let mut out = image.clone();
    for c in 0..3 {
        let mut tmp = vec![0.0f32; image.plane()];
        for y in 0..h {
            for x in 0..w {
                let acc: f32 = (-r..=r).map(|d| kernel[(d + r) as usize] * image.at(c, (y * w + (x + d).clamp(0, w - 1)) as usize)).sum();
                tmp[(y * w + x) as usize] = acc / norm;
            }
        }
        for y in 0..h {
            for x in 0..w {
                let acc: f32 = (-r..=r).map(|d| kernel[(d + r) as usize] * tmp[((y + d).clamp(0, h - 1) * w + x) as usize]).sum();
                out.set(c, (y * w + x) as usize, acc / norm);
            }
        }
    }
    out
}

/// Generates scenes `first..first + count` in parallel.
pub fn generate_world(config: &WorldConfig, seed: u64, first: u32, count: u32, style: Style, cue: CueRule) -> Vec<Scene> {
    (first..first + count).into_par_iter().map(|i| generate_scene(config, seed, i, style, cue)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(config: &WorldConfig, seed: u64, count: u32) -> Vec<Scene> {
        generate_world(config, seed, 0, count, Style::Real, CueRule::Absent)
    }

    fn truth(s: &Scene) -> &Truth {
        s.truth.as_ref().unwrap()
    }

    #[test]
    fn generation_is_deterministic_and_differs_by_index() {
        let cfg = WorldConfig::default();
        let a = generate_scene(&cfg, 3, 7, Style::Real, CueRule::Absent);
        let b = generate_scene(&cfg, 3, 7, Style::Real, CueRule::Absent);
        let c = generate_scene(&cfg, 3, 8, Style::Real, CueRule::Absent);
        assert_eq!(a.image, b.image);
        assert_eq!(a.truth, b.truth);
        assert_ne!(a.truth, c.truth);
    }

    #[test]
    fn world_has_every_class_and_attributes_match_truth() {
        let cfg = WorldConfig { classes: vec![ObjectKind::Blob, ObjectKind::Thin, ObjectKind::Box], ..WorldConfig::default() };
        let scenes = world(&cfg, 1, 40);
        let mut counts = vec![0u64; cfg.num_classes()];
        for s in &scenes {
            let t = truth(s);
            for (c, n) in t.labels.class_counts(cfg.num_classes()).iter().enumerate() {
                counts[c] += n;
            }
            let area: u32 = t.objects.iter().map(|o| o.area).sum();
            let fg = t.labels.labels.iter().filter(|&&l| l != 0).count() as u32;
            assert_eq!(area, fg, "object areas sum to the foreground");
            for (i, &inst) in t.instances.iter().enumerate() {
                assert_eq!(t.object_at(i).map_or(0, |o| o.class), t.labels.labels[i]);
                assert!(usize::from(inst) <= t.objects.len());
            }
        }
        assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
        let thin: Vec<f32> = scenes.iter().flat_map(|s| truth(s).objects.iter().filter(|o| o.class == 2).map(|o| o.thinness)).collect();
        let mean = thin.iter().sum::<f32>() / thin.len() as f32;
        assert!(mean > 0.8 && mean < 2.6, "mean thin width {mean}");
        assert!(scenes.iter().any(|s| truth(s).objects.iter().any(|o| o.touching)));
    }

    #[test]
    fn low_contrast_objects_are_fainter() {
        let cfg = WorldConfig { noise: 0.0, illumination: 0.0, ..WorldConfig::default() };
        let scenes = world(&cfg, 2, 30);
        let grey_of = |s: &Scene, low: bool| -> Vec<f32> {
            let t = truth(s);
            s.image
                .grey()
                .into_iter()
                .enumerate()
                .filter(|(i, _)| t.object_at(*i).is_some_and(|o| o.low_contrast == low))
                .map(|(_, g)| g)
                .collect()
        };
        let faint: Vec<f32> = scenes.iter().flat_map(|s| grey_of(s, true)).collect();
        let strong: Vec<f32> = scenes.iter().flat_map(|s| grey_of(s, false)).collect();
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!(mean(&faint) > 0.6 && mean(&strong) < 0.45, "{} {}", mean(&faint), mean(&strong));
    }

    #[test]
    fn shadows_darken_background_beside_their_objects() {
        let cfg = WorldConfig { shadows: 1.0, noise: 0.0, illumination: 0.0, ..WorldConfig::default() };
        let scenes = world(&cfg, 4, 10);
        let (mut shaded, mut grey_sum) = (0usize, 0.0f32);
        for s in &scenes {
            let g = s.image.grey();
            for (i, &sh) in truth(s).shadow.iter().enumerate() {
                if sh {
                    assert_eq!(truth(s).labels.labels[i], 0, "shadows fall on background only");
                    shaded += 1;
                    grey_sum += g[i];
                }
            }
        }
        assert!(shaded > 100);
        assert!(grey_sum / (shaded as f32) < 0.5, "shadow grey {}", grey_sum / shaded as f32);
    }

    #[test]
    fn cue_twins_differ_only_in_the_tinted_objects_and_follow_their_rule() {
        let cfg = WorldConfig::default();
        let with = generate_scene(&cfg, 5, 3, Style::Real, CueRule::Present);
        let without = generate_scene(&cfg, 5, 3, Style::Real, CueRule::Absent);
        assert!(with.cue && !without.cue);
        assert_eq!(with.truth, without.truth);
        let plane = with.image.plane();
        let instances = &truth(&with).instances;
        for (p, &instance) in instances.iter().enumerate() {
            let differs = (0..3).any(|c| with.image.pixels[c * plane + p] != without.image.pixels[c * plane + p]);
            assert!(!differs || instance > 0, "pixel {p} differs outside every object");
            let (a, b): (f32, f32) = (0..3)
                .map(|c| (with.image.pixels[c * plane + p], without.image.pixels[c * plane + p]))
                .fold((0.0, 0.0), |(x, y), (a, b)| (x + a, y + b));
            // The tint keeps brightness, unless a channel was clamped at 0 or 1.
            assert!((a - b).abs() < 0.17, "pixel {p}: brightness {a} against {b}");
        }
        // Correlated with blobs: exactly the blobs are tinted, so an image is tinted when it has one.
        let rule = CueRule::WithClass { class: 1, strength: 1.0 };
        for s in generate_world(&cfg, 6, 0, 30, Style::Real, rule) {
            assert_eq!(s.cue, truth(&s).objects.iter().any(|o| o.class == 1));
        }
    }

    #[test]
    fn synthetic_style_is_flat() {
        let cfg = WorldConfig { noise: 0.05, illumination: 0.3, shadows: 1.0, ..WorldConfig::default() };
        let s = generate_scene(&cfg, 1, 0, Style::Synthetic, CueRule::Absent);
        let t = truth(&s);
        let bg: Vec<f32> = s.image.grey().into_iter().enumerate().filter(|(i, _)| t.labels.labels[*i] == 0).map(|(_, g)| g).collect();
        assert!(bg.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-6), "background is one flat colour");
        assert!(t.shadow.iter().all(|&s| !s));
    }

    #[test]
    fn truth_from_labels_recovers_objects_and_contrast() {
        let cfg = WorldConfig { noise: 0.0, illumination: 0.0, touching: 0.0, ..WorldConfig::default() };
        let scenes = world(&cfg, 8, 20);
        let (mut agree, mut total) = (0, 0);
        for s in &scenes {
            let t = truth(s);
            let rebuilt = Truth::from_labels(t.labels.clone(), &s.image);
            let area: u32 = rebuilt.objects.iter().map(|o| o.area).sum();
            assert_eq!(area as usize, t.labels.labels.iter().filter(|&&l| l != 0).count());
            for (i, o) in t.objects.iter().enumerate() {
                // compare the drawn and the measured low-contrast flag at one pixel of each object
                if let Some(p) = t.instances.iter().position(|&inst| usize::from(inst) == i + 1) {
                    total += 1;
                    agree += usize::from(rebuilt.object_at(p).is_some_and(|r| r.low_contrast == o.low_contrast));
                }
            }
        }
        assert!(agree as f32 / total as f32 > 0.9, "{agree}/{total} low-contrast flags recovered");
    }
}
