//! The procedural world's generator: shapes, occlusion, shadows, contrast and noise drawn from a
//! seed into a [`Scene`] with exact truth.

use rayon::prelude::*;

use crate::raster::{Image, LabelMap};
use crate::rng::Rng;
use crate::world::{CueRule, ObjectAttributes, ObjectKind, Scene, Style, Truth, WorldConfig, mark_touching, scene_id};

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
