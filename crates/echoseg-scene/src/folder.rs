//! Folder datasets: `images/NAME.png` (or .jpg) with mask sets `masks/SET/NAME.png`, each set
//! usable as a label source; read and checked in full before any training starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::png::{BitDepth, read_image_with_depth, write_image, write_label_map};
use crate::raster::{ClassTable, Image, LabelMap};
use crate::source::MaskSet;
use crate::world::{Scene, Style, Truth};

/// How to read a folder dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct FolderSpec {
    /// The dataset directory (holding `images/` and `masks/`).
    pub root: PathBuf,
    /// The classes, background first.
    pub classes: ClassTable,
    /// Mask colours per class (same order as `classes`) when masks are RGB; `None` when masks
    /// hold class indices as grey values.
    pub colours: Option<Vec<[u8; 3]>>,
    /// The mask set holding exact truth, if there is one.
    pub truth: Option<String>,
    /// Mask sets that must exist (the folder sources of a manifest).
    pub required_sets: Vec<String>,
}

/// One problem with a file or directory of a folder dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct DataProblem {
    /// The file or directory.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// Every problem found in a folder dataset.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct FolderError(pub Vec<DataProblem>);

fn describe(problems: &[DataProblem]) -> String {
    let mut s = format!("the folder dataset has {} problem{}:", problems.len(), if problems.len() == 1 { "" } else { "s" });
    for p in problems.iter().take(50) {
        s.push_str(&format!("\n  {}: {}", p.path.display(), p.message));
    }
    if problems.len() > 50 {
        s.push_str(&format!("\n  … and {} more", problems.len() - 50));
    }
    s
}

/// A folder dataset read into memory.
#[derive(Clone, Debug)]
pub struct FolderDataset {
    /// Every image, sorted by name; truth attached where the truth set has a mask.
    pub scenes: Vec<Scene>,
    /// The mask sets by name (the truth set included).
    pub mask_sets: BTreeMap<String, MaskSet>,
}

/// Whether `path` names an image file echoseg reads (PNG, JPEG or TIFF, by its extension).
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg" | "tif" | "tiff"))
}

/// The image an image or mask file stands for: its file name without the extension.
pub fn image_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn list_images(dir: &Path, problems: &mut Vec<DataProblem>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(DataProblem { path: dir.to_path_buf(), message: format!("missing or unreadable directory ({e})") });
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file() && is_image_file(p)).collect();
    files.sort();
    files
}

fn read_mask(path: &Path, spec: &FolderSpec, expected: Option<(usize, usize)>) -> Result<LabelMap, String> {
    let decoded = image::open(path).map_err(|e| format!("unreadable or truncated mask ({e})"))?;
    let (w, h) = (decoded.width() as usize, decoded.height() as usize);
    if w == 0 || h == 0 {
        return Err("the mask has no pixels".into());
    }
    if let Some((ew, eh)) = expected
        && (w, h) != (ew, eh)
    {
        return Err(format!("mask is {w}×{h} but its image is {ew}×{eh}"));
    }
    let labels = match &spec.colours {
        None => {
            // A 16-bit mask holds class indices as they are; converting it to 8 bits would scale them.
            let grey: Vec<u16> = match &decoded {
                image::DynamicImage::ImageLuma16(m) => m.as_raw().clone(),
                other => other.to_luma8().into_raw().into_iter().map(u16::from).collect(),
            };
            if let Some((i, &v)) = grey.iter().enumerate().find(|&(_, &v)| usize::from(v) >= spec.classes.len()) {
                return Err(format!(
                    "value {v} at pixel ({}, {}) is outside the class table (0..{}: {})",
                    i % w,
                    i / w,
                    spec.classes.len() - 1,
                    spec.classes.names().join(", ")
                ));
            }
            grey.into_iter().map(|v| v as u8).collect()
        }
        Some(colours) => {
            let rgb = decoded.to_rgb8().into_raw();
            let mut labels = Vec::with_capacity(w * h);
            for (i, px) in rgb.chunks_exact(3).enumerate() {
                let c = [px[0], px[1], px[2]];
                match colours.iter().position(|&k| k == c) {
                    Some(class) => labels.push(class as u8),
                    None => return Err(format!("colour {c:?} at pixel ({}, {}) is not in the class table's colours", i % w, i / w)),
                }
            }
            labels
        }
    };
    Ok(LabelMap { width: w, height: h, labels })
}

/// Reads and checks a folder dataset; every problem (unreadable or truncated files, empty images,
/// masks of another size than their image, mask values outside the class table, masks without
/// images, missing directories) is collected before failing. Images may differ in size.
pub fn read_folder(spec: &FolderSpec) -> Result<FolderDataset, FolderError> {
    let mut problems = Vec::new();
    if !spec.root.is_dir() {
        return Err(FolderError(vec![DataProblem {
            path: spec.root.clone(),
            message: "missing directory: the dataset folder does not exist".into(),
        }]));
    }
    let image_paths = list_images(&spec.root.join("images"), &mut problems);
    if image_paths.is_empty() && problems.is_empty() {
        problems.push(DataProblem { path: spec.root.join("images"), message: "holds no .png or .jpg images".into() });
    }
    type Decoded = Result<(Image, BitDepth), String>;
    let read: Vec<(PathBuf, Decoded)> = image_paths
        .par_iter()
        .map(|p| {
            let r = read_image_with_depth(p).map_err(|e| match e {
                crate::png::ImageFileError::Empty { .. } => "the image has no pixels".to_string(),
                crate::png::ImageFileError::Unreadable { message, .. } => format!("unreadable or truncated image ({message})"),
            });
            (p.clone(), r)
        })
        .collect();
    let mut images: BTreeMap<String, Image> = BTreeMap::new();
    let mut deep = Vec::new();
    for (path, r) in read {
        match r {
            Err(message) => problems.push(DataProblem { path, message }),
            Ok((img, depth)) => {
                if depth == BitDepth::Deep {
                    deep.push(image_name(&path));
                }
                if images.insert(image_name(&path), img).is_some() {
                    problems.push(DataProblem { path, message: "two images share this name (with different extensions)".into() });
                }
            }
        }
    }

    rescale_deep(&mut images, &deep);

    let masks_dir = spec.root.join("masks");
    let mut set_names: Vec<String> = std::fs::read_dir(&masks_dir)
        .map(|entries| {
            entries.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
        })
        .unwrap_or_default();
    set_names.sort();
    for required in spec.required_sets.iter().chain(spec.truth.iter()) {
        if !set_names.contains(required) {
            problems.push(DataProblem { path: masks_dir.join(required), message: "missing directory: no such mask set".into() });
        }
    }
    let mut mask_sets = BTreeMap::new();
    for set in set_names {
        let dir = masks_dir.join(&set);
        let files = list_images(&dir, &mut problems);
        let read: Vec<(PathBuf, String, Result<LabelMap, String>)> = files
            .par_iter()
            .map(|p| {
                let name = image_name(p);
                let expected = images.get(&name).map(|i| (i.width, i.height));
                let r = if images.contains_key(&name) || image_paths.iter().any(|ip| image_name(ip) == name) {
                    read_mask(p, spec, expected)
                } else {
                    Err(format!("has no image images/{name}.png (or .jpg)"))
                };
                (p.clone(), name, r)
            })
            .collect();
        let mut masks = BTreeMap::new();
        for (path, name, r) in read {
            match r {
                Ok(m) => {
                    masks.insert(name, m);
                }
                Err(message) => problems.push(DataProblem { path, message }),
            }
        }
        mask_sets.insert(set.clone(), MaskSet { name: set, masks });
    }
    if !problems.is_empty() {
        return Err(FolderError(problems));
    }
    let truth = spec.truth.as_ref().and_then(|t| mask_sets.get(t));
    let scenes = images
        .into_iter()
        .enumerate()
        .map(|(index, (name, image))| {
            let truth = truth.and_then(|t| t.masks.get(&name)).map(|m| Truth::from_labels(m.clone(), &image));
            Scene { index: index as u32, name, image, truth, style: Style::Real, cue: false }
        })
        .collect();
    Ok(FolderDataset { scenes, mask_sets })
}

/// Stretches the images deeper than 8 bits by one factor, so the brightest value among them is 1:
/// 12-bit data stored in 16-bit files would otherwise sit in the bottom 1/16 of the range. One
/// factor for the whole dataset keeps brightness comparable between images.
fn rescale_deep(images: &mut BTreeMap<String, Image>, deep: &[String]) {
    let brightest = deep.iter().filter_map(|n| images.get(n)).flat_map(|i| i.pixels.iter().copied()).fold(0.0f32, f32::max);
    if brightest <= 0.0 {
        return;
    }
    for name in deep {
        if let Some(image) = images.get_mut(name) {
            image.pixels.iter_mut().for_each(|v| *v /= brightest);
        }
    }
}

/// Writes scenes and mask sets in the folder layout: `images/NAME.png`, `masks/SET/NAME.png`
/// (class indices as grey values).
pub fn write_folder(root: &Path, scenes: &[Scene], mask_sets: &[MaskSet]) -> Result<(), crate::png::ImageFileError> {
    let io = |p: &Path, e: std::io::Error| crate::png::ImageFileError::Unreadable { path: p.to_path_buf(), message: e.to_string() };
    let images = root.join("images");
    std::fs::create_dir_all(&images).map_err(|e| io(&images, e))?;
    scenes.par_iter().try_for_each(|s| write_image(&images.join(format!("{}.png", s.name)), &s.image))?;
    for set in mask_sets {
        let dir = root.join("masks").join(&set.name);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        set.masks.par_iter().try_for_each(|(name, m)| write_label_map(&dir.join(format!("{name}.png")), m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::generate_world;
    use crate::world::{CueRule, WorldConfig};

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn fixture(label: &str) -> (Dir, FolderSpec, Vec<Scene>) {
        let root = std::env::temp_dir().join(format!("echoseg-folder-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let world = WorldConfig { size: 24, ..WorldConfig::default() };
        let scenes = generate_world(&world, 3, 0, 4, Style::Real, CueRule::Absent);
        let truth = MaskSet {
            name: "truth".into(),
            masks: scenes.iter().map(|s| (s.name.clone(), s.truth.as_ref().unwrap().labels.clone())).collect(),
        };
        write_folder(&root, &scenes, &[truth]).unwrap();
        let spec = FolderSpec {
            root: root.clone(),
            classes: world.class_table(),
            colours: None,
            truth: Some("truth".into()),
            required_sets: vec![],
        };
        (Dir(root), spec, scenes)
    }

    #[test]
    fn round_trip_is_identical() {
        let (_dir, spec, scenes) = fixture("roundtrip");
        let data = read_folder(&spec).unwrap();
        assert_eq!(data.scenes.len(), scenes.len());
        for (a, b) in data.scenes.iter().zip(&scenes) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.image, b.image, "world images are 8-bit exact");
            assert_eq!(a.truth.as_ref().unwrap().labels, b.truth.as_ref().unwrap().labels);
        }
    }

    fn problems(spec: &FolderSpec) -> String {
        read_folder(spec).unwrap_err().to_string()
    }

    #[test]
    fn every_bad_data_case_is_named() {
        let (dir, spec, _) = fixture("bad");
        let root = &dir.0;
        // truncated image
        let img = root.join("images/s00000.png");
        let bytes = std::fs::read(&img).unwrap();
        std::fs::write(&img, &bytes[..bytes.len() / 2]).unwrap();
        // mask of the wrong size
        write_label_map(&root.join("masks/truth/s00001.png"), &LabelMap::filled(5, 5, 0)).unwrap();
        // a value outside the class table
        write_label_map(&root.join("masks/truth/s00002.png"), &LabelMap::filled(24, 24, 9)).unwrap();
        // a mask without an image
        write_label_map(&root.join("masks/truth/orphan.png"), &LabelMap::filled(24, 24, 0)).unwrap();
        // an empty file posing as an image
        std::fs::write(root.join("images/empty.png"), b"").unwrap();
        let text = problems(&FolderSpec { required_sets: vec!["manual".into()], ..spec.clone() });
        for needle in [
            "s00000.png: unreadable or truncated image",
            "s00001.png: mask is 5×5 but its image is 24×24",
            "s00002.png: value 9 at pixel (0, 0) is outside the class table (0..2: background, blob, thin)",
            "orphan.png: has no image images/orphan.png",
            "empty.png: unreadable or truncated image",
            "masks/manual: missing directory",
        ] {
            assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
        }
        let missing = problems(&FolderSpec { root: root.join("nope"), ..spec });
        assert!(missing.contains("nope: missing directory"), "{missing}");
    }

    #[test]
    fn colour_masks_map_through_the_table_and_unknown_colours_are_named() {
        let (dir, spec, scenes) = fixture("colours");
        let colours = vec![[0, 0, 0], [255, 0, 0], [0, 0, 255]];
        let to_rgb = |m: &LabelMap| {
            Image::from_rgb8(m.width, m.height, &m.labels.iter().flat_map(|&l| colours[usize::from(l)]).collect::<Vec<u8>>())
        };
        let set = dir.0.join("masks/painted");
        std::fs::create_dir_all(&set).unwrap();
        for s in &scenes {
            write_image(&set.join(format!("{}.png", s.name)), &to_rgb(&s.truth.as_ref().unwrap().labels)).unwrap();
        }
        std::fs::remove_dir_all(dir.0.join("masks/truth")).unwrap();
        let spec = FolderSpec { colours: Some(colours.clone()), truth: None, ..spec };
        let data = read_folder(&spec).unwrap();
        assert_eq!(data.mask_sets["painted"].masks[&scenes[1].name], scenes[1].truth.as_ref().unwrap().labels);
        assert!(data.scenes.iter().all(|s| s.truth.is_none()));
        write_image(&set.join(format!("{}.png", scenes[0].name)), &Image::filled(24, 24, [0.0, 1.0, 0.0])).unwrap();
        assert!(problems(&spec).contains("colour [0, 255, 0] at pixel (0, 0) is not in the class table's colours"));
    }

    #[test]
    fn deep_grey_rgba_and_tiff_images_read_with_their_masks() {
        let (dir, spec, scenes) = fixture("depths");
        let root = &dir.0;
        let grey = |s: &Scene| -> Vec<f32> { (0..24 * 24).map(|i| s.image.pixels[i]).collect() };
        // s00000 as 16-bit grey using 12 bits (as many cameras do), s00001 as RGBA, s00002 as TIFF.
        let twelve: Vec<u16> = grey(&scenes[0]).iter().map(|&v| (v * 4095.0).round() as u16).collect();
        let bytes: Vec<u8> = twelve.iter().flat_map(|v| v.to_ne_bytes()).collect();
        std::fs::remove_file(root.join("images/s00000.png")).unwrap();
        image::save_buffer(root.join("images/s00000.png"), &bytes, 24, 24, image::ExtendedColorType::L16).unwrap();
        let rgba: Vec<u8> = scenes[1].image.to_rgb8().chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
        image::save_buffer(root.join("images/s00001.png"), &rgba, 24, 24, image::ExtendedColorType::Rgba8).unwrap();
        std::fs::remove_file(root.join("images/s00002.png")).unwrap();
        image::save_buffer(root.join("images/s00002.tif"), &scenes[2].image.to_rgb8(), 24, 24, image::ExtendedColorType::Rgb8).unwrap();
        // A 16-bit mask keeps its class indices.
        let truth0 = &scenes[0].truth.as_ref().unwrap().labels;
        let mask16: Vec<u8> = truth0.labels.iter().flat_map(|&l| u16::from(l).to_ne_bytes()).collect();
        image::save_buffer(root.join("masks/truth/s00000.png"), &mask16, 24, 24, image::ExtendedColorType::L16).unwrap();

        let data = read_folder(&spec).unwrap();
        let by_name = |n: &str| data.scenes.iter().find(|s| s.name == n).unwrap();
        let read0 = grey(by_name("s00000"));
        let brightest = twelve.iter().copied().max().unwrap() as f32;
        for (r, &t) in read0.iter().zip(&twelve) {
            assert!((r - t as f32 / brightest).abs() < 1e-6, "16-bit values are stretched by the brightest one: {r} vs {t}");
        }
        assert_eq!(read0.iter().copied().fold(0.0, f32::max), 1.0);
        assert_eq!(by_name("s00000").truth.as_ref().unwrap().labels, *truth0);
        assert_eq!(by_name("s00001").image, scenes[1].image, "alpha is ignored");
        assert_eq!(by_name("s00002").image, scenes[2].image, "TIFF reads like PNG");
        assert_eq!(by_name("s00002").truth.as_ref().unwrap().labels, scenes[2].truth.as_ref().unwrap().labels);
    }
}
