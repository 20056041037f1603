//! Training samples and their assembly into batches.

use burn::tensor::{Device, Tensor, TensorData};
use echoseg_scene::{Image, Rng};

use crate::NetsError;

/// Label value meaning "no label here": the pixel gets no weight.
pub const IGNORE: u8 = 255;

/// What a sample should be segmented as.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// One class per pixel, row-major; [`IGNORE`] pixels carry no loss.
    Hard(Vec<u8>),
    /// Class probabilities, class-planar (classes × height × width).
    Soft(Vec<f32>),
}

/// One training image with its target and optional per-pixel weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The input image.
    pub image: Image,
    /// The target segmentation.
    pub target: Target,
    /// Per-pixel loss weights, row-major (`None` = all 1).
    pub weight: Option<Vec<f32>>,
}

impl Sample {
    /// A sample with a hard label map and unit weights.
    pub fn hard(image: Image, labels: Vec<u8>) -> Self {
        Self { image, target: Target::Hard(labels), weight: None }
    }
}

/// Checks that every sample's target and weights match its own image (sizes may differ).
pub(crate) fn check_samples(samples: &[Sample], classes: usize) -> Result<(), NetsError> {
    if samples.is_empty() {
        return Err(NetsError::EmptyTrainingSet);
    }
    for (index, s) in samples.iter().enumerate() {
        let plane = s.image.width * s.image.height;
        let target_ok = match &s.target {
            Target::Hard(l) => l.len() == plane,
            Target::Soft(p) => p.len() == classes * plane,
        };
        let weight_ok = s.weight.as_ref().is_none_or(|w| w.len() == plane);
        if s.image.pixels.len() != 3 * plane || !target_ok || !weight_ok {
            return Err(NetsError::InconsistentSample {
                index,
                found: format!("{}×{} with a target of the wrong size or layout", s.image.width, s.image.height),
                expected: format!("an RGB image with a matching target for {classes} classes"),
            });
        }
    }
    Ok(())
}

/// Images whose sides all stay within this many pixels train whole when they share one size;
/// larger or mixed ones train on square crops of at most this side (a batch of 8 such crops
/// stays within a few hundred MiB on the reference architectures).
pub const CROP_LIMIT: usize = 128;

/// The side of the square crops training steps cut every image to, `None` for whole images.
/// `requested` is `train.crop`; without it, images of one size up to [`CROP_LIMIT`] train whole
/// and any others on crops of their smallest side, capped at [`CROP_LIMIT`].
pub fn training_crop(requested: Option<usize>, sizes: impl IntoIterator<Item = (usize, usize)>) -> Result<Option<usize>, NetsError> {
    let sizes: Vec<(usize, usize)> = sizes.into_iter().collect();
    let Some((index, &(width, height))) = sizes.iter().enumerate().min_by_key(|(_, (w, h))| (*w).min(*h)) else { return Ok(requested) };
    let first = sizes[0];
    let one_size = sizes.iter().all(|&s| s == first);
    let smallest = width.min(height);
    match requested {
        Some(side) if side > smallest => Err(NetsError::CropTooLarge { side, index, width, height }),
        Some(side) if one_size && first == (side, side) => Ok(None),
        Some(side) => Ok(Some(side)),
        None if one_size && first.0 <= CROP_LIMIT && first.1 <= CROP_LIMIT => Ok(None),
        None => Ok(Some(smallest.min(CROP_LIMIT))),
    }
}

/// A rectangle of an image: a training crop or an inference tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

impl Window {
    /// The whole of a `width`×`height` image.
    pub(crate) fn whole(width: usize, height: usize) -> Self {
        Self { x: 0, y: 0, width, height }
    }

    /// A `side`×`side` window at a uniformly drawn place inside a `width`×`height` image.
    pub(crate) fn random(side: usize, width: usize, height: usize, rng: &mut Rng) -> Self {
        let x = rng.int(0, (width - side) as i64) as usize;
        let y = rng.int(0, (height - side) as i64) as usize;
        Self { x, y, width: side, height: side }
    }

    /// The central `side`×`side` window of a `width`×`height` image.
    pub(crate) fn centre(side: usize, width: usize, height: usize) -> Self {
        Self { x: (width - side) / 2, y: (height - side) / 2, width: side, height: side }
    }

    /// `values` (`planes` planes of a `width`-wide raster) cut to this window, plane by plane.
    pub(crate) fn cut<T: Copy>(&self, values: &[T], planes: usize, width: usize) -> Vec<T> {
        let plane = values.len() / planes.max(1);
        let mut out = Vec::with_capacity(planes * self.width * self.height);
        for c in 0..planes {
            for y in self.y..self.y + self.height {
                let row = c * plane + y * width + self.x;
                out.extend_from_slice(&values[row..row + self.width]);
            }
        }
        out
    }

    /// `image` cut to this window.
    pub(crate) fn image(&self, image: &Image) -> Image {
        Image { width: self.width, height: self.height, pixels: self.cut(&image.pixels, 3, image.width) }
    }

    /// `sample` cut to this window: image, target and weights alike.
    pub(crate) fn sample(&self, sample: &Sample, classes: usize) -> Sample {
        let width = sample.image.width;
        let target = match &sample.target {
            Target::Hard(labels) => Target::Hard(self.cut(labels, 1, width)),
            Target::Soft(probs) => Target::Soft(self.cut(probs, classes, width)),
        };
        Sample { image: self.image(&sample.image), target, weight: sample.weight.as_ref().map(|w| self.cut(w, 1, width)) }
    }
}

/// Where windows of `side` start along an axis of `length` to cover it with at least `overlap`
/// pixels shared by neighbours: the first at 0, the last ending at `length`, evenly between.
pub(crate) fn tile_starts(length: usize, side: usize, overlap: usize) -> Vec<usize> {
    if length <= side {
        return vec![0];
    }
    let stride = side.saturating_sub(overlap).max(1);
    let count = (length - side).div_ceil(stride) + 1;
    (0..count).map(|i| i * (length - side) / (count - 1)).collect()
}

/// Every sample cut to its central `side`×`side` window: the validation set of a training on
/// crops. A fixed window keeps epochs comparable, and one per image keeps the validation loss
/// as cheap as on whole images of the crop's size, however large the images are.
pub(crate) fn centre_crops(samples: &[Sample], side: usize, classes: usize) -> Vec<Sample> {
    samples.iter().map(|s| Window::centre(side, s.image.width, s.image.height).sample(s, classes)).collect()
}

/// A batch on the device: images, soft targets and weights.
pub(crate) struct Batch {
    pub images: Tensor<4>,
    pub targets: Tensor<4>,
    pub weights: Tensor<4>,
    pub len: usize,
}

/// How a batch's samples are cut: whole (all of one size), or random square crops of `side`
/// drawn from `rng`.
pub(crate) enum Cut<'r> {
    Whole,
    Crops { side: usize, rng: &'r mut Rng },
}

/// Builds a batch from `indices`, cut as `cut` says and flipped when `flips` says so.
pub(crate) fn make_batch(
    samples: &[Sample],
    indices: &[usize],
    classes: usize,
    flips: Option<&mut Rng>,
    cut: Cut<'_>,
    device: &Device,
) -> Batch {
    let first = &samples[indices[0]].image;
    let mut cut = cut;
    let (w, h) = match &cut {
        Cut::Whole => (first.width, first.height),
        Cut::Crops { side, .. } => (*side, *side),
    };
    let plane = w * h;
    let n = indices.len();
    let mut x = vec![0.0f32; n * 3 * plane];
    let mut t = vec![0.0f32; n * classes * plane];
    let mut wt = vec![0.0f32; n * plane];
    let mut flips = flips;
    for (b, &i) in indices.iter().enumerate() {
        let s = &samples[i];
        let (fx, fy) = match flips.as_deref_mut() {
            Some(rng) => (rng.chance(0.5), rng.chance(0.5)),
            None => (false, false),
        };
        let (sw, sh) = (s.image.width, s.image.height);
        let window = match &mut cut {
            Cut::Whole => Window::whole(sw, sh),
            Cut::Crops { side, rng } => Window::random(*side, sw, sh, rng),
        };
        let src_plane = sw * sh;
        let src = |p: usize| {
            let (px, py) = (p % w, p / w);
            let sx = if fx { w - 1 - px } else { px };
            let sy = if fy { h - 1 - py } else { py };
            (window.y + sy) * sw + window.x + sx
        };
        for p in 0..plane {
            let q = src(p);
            for c in 0..3 {
                x[(b * 3 + c) * plane + p] = s.image.pixels[c * src_plane + q];
            }
            let weight = s.weight.as_ref().map_or(1.0, |w| w[q]);
            match &s.target {
                Target::Hard(labels) => {
                    let l = usize::from(labels[q]);
                    if l < classes {
                        t[(b * classes + l) * plane + p] = 1.0;
                        wt[b * plane + p] = weight;
                    }
                }
                Target::Soft(probs) => {
                    for c in 0..classes {
                        t[(b * classes + c) * plane + p] = probs[c * src_plane + q];
                    }
                    wt[b * plane + p] = weight;
                }
            }
        }
    }
    Batch {
        images: Tensor::from_data(TensorData::new(x, [n, 3, h, w]), device),
        targets: Tensor::from_data(TensorData::new(t, [n, classes, h, w]), device),
        weights: Tensor::from_data(TensorData::new(wt, [n, 1, h, w]), device),
        len: n,
    }
}

/// Indices of `sizes` grouped by size (groups in order of first appearance, indices in order
/// within each) and cut into batches of at most `batch` items.
pub(crate) fn batches_by_size(sizes: &[(usize, usize)], batch: usize) -> Vec<Vec<usize>> {
    let mut groups: Vec<((usize, usize), Vec<usize>)> = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        match groups.iter_mut().find(|(s, _)| *s == size) {
            Some((_, members)) => members.push(i),
            None => groups.push((size, vec![i])),
        }
    }
    groups.into_iter().flat_map(|(_, members)| members.chunks(batch.max(1)).map(<[usize]>::to_vec).collect::<Vec<_>>()).collect()
}

/// Images only, for inference.
pub(crate) fn image_batch(images: &[&Image], device: &Device) -> Tensor<4> {
    let (w, h) = (images[0].width, images[0].height);
    let mut x = Vec::with_capacity(images.len() * 3 * w * h);
    for im in images {
        x.extend_from_slice(&im.pixels);
    }
    Tensor::from_data(TensorData::new(x, [images.len(), 3, h, w]), device)
}

/// A tensor's values read back from the device, row-major.
pub(crate) fn read_back<const D: usize>(x: Tensor<D>) -> Result<Vec<f32>, NetsError> {
    x.into_data().try_into_vec::<f32>().map_err(|e| NetsError::Readback(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_images_train_whole_and_mixed_or_large_ones_on_crops_of_their_smallest_side() {
        assert_eq!(training_crop(None, [(64, 64); 3]).unwrap(), None);
        assert_eq!(training_crop(None, [(64, 64), (40, 100), (90, 52)]).unwrap(), Some(40));
        assert_eq!(training_crop(None, [(512, 300); 2]).unwrap(), Some(CROP_LIMIT));
        assert_eq!(training_crop(Some(32), [(64, 64), (40, 100)]).unwrap(), Some(32));
        assert_eq!(training_crop(Some(64), [(64, 64); 2]).unwrap(), None, "a crop of the whole image is no crop");
        let err = training_crop(Some(48), [(64, 64), (40, 100)]).unwrap_err().to_string();
        assert!(err.contains("image 1, which is 40×100 px") && err.contains("at most 40"), "{err}");
    }

    #[test]
    fn tiles_cover_every_pixel_and_start_inside_the_image() {
        for (length, side, overlap) in [(100, 32, 8), (33, 32, 8), (32, 32, 8), (20, 32, 8), (257, 256, 32), (1000, 256, 32)] {
            let starts = tile_starts(length, side.min(length), overlap);
            let side = side.min(length);
            assert_eq!(starts[0], 0);
            assert_eq!(starts.last().unwrap() + side, length, "{length} {side}");
            for pair in starts.windows(2) {
                assert!(pair[0] + side >= pair[1] + overlap.min(side), "neighbours share at least the overlap: {starts:?}");
            }
        }
    }

    #[test]
    fn a_crop_takes_image_target_and_weights_from_one_window_of_its_own_sample() {
        // Pixel value, label and weight all encode the position, so a crop shows where it came from.
        let (w, h) = (20, 14);
        let position = |p: usize| (p % w + 100 * (p / w)) as f32;
        let image = Image { width: w, height: h, pixels: (0..3 * w * h).map(|i| position(i % (w * h))).collect() };
        let labels: Vec<u8> = (0..w * h).map(|p| ((p % w + p / w) % 2) as u8).collect();
        let weight: Vec<f32> = (0..w * h).map(position).collect();
        let samples = vec![Sample { image, target: Target::Hard(labels.clone()), weight: Some(weight) }];
        let mut rng = Rng::new(5, "crops");
        let device = Device::flex();
        let mut corners = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let batch = make_batch(&samples, &[0], 2, None, Cut::Crops { side: 8, rng: &mut rng }, &device);
            assert_eq!(batch.images.dims(), [1, 3, 8, 8]);
            let x = read_back(batch.images).unwrap();
            let (x0, y0) = ((x[0] as usize) % 100, (x[0] as usize) / 100);
            corners.insert((x0, y0));
            assert!(x0 + 8 <= w && y0 + 8 <= h, "the crop lies inside the image");
            let t = read_back(batch.targets).unwrap();
            let wt = read_back(batch.weights).unwrap();
            for p in 0..64 {
                let q = (y0 + p / 8) * w + x0 + p % 8;
                assert_eq!(x[2 * 64 + p], position(q));
                assert_eq!(wt[p], position(q));
                assert_eq!(t[usize::from(labels[q]) * 64 + p], 1.0);
            }
        }
        assert!(corners.len() > 5, "crops are drawn at many places: {corners:?}");
    }

    #[test]
    fn batches_by_size_keep_order_and_never_mix_sizes() {
        let sizes = [(4, 4), (6, 4), (4, 4), (4, 4), (6, 4)];
        assert_eq!(batches_by_size(&sizes, 2), vec![vec![0, 2], vec![3], vec![1, 4]]);
        assert_eq!(batches_by_size(&[(4, 4); 5], 2), vec![vec![0, 1], vec![2, 3], vec![4]]);
    }
}
