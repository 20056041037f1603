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

/// Checks that every sample has the first one's size and a target of the right length.
pub(crate) fn check_samples(samples: &[Sample], classes: usize) -> Result<(usize, usize), NetsError> {
    let first = samples.first().ok_or(NetsError::EmptyTrainingSet)?;
    let (w, h) = (first.image.width, first.image.height);
    for (index, s) in samples.iter().enumerate() {
        let plane = s.image.width * s.image.height;
        let target_ok = match &s.target {
            Target::Hard(l) => l.len() == plane,
            Target::Soft(p) => p.len() == classes * plane,
        };
        let weight_ok = s.weight.as_ref().is_none_or(|w| w.len() == plane);
        if (s.image.width, s.image.height) != (w, h) || s.image.pixels.len() != 3 * plane || !target_ok || !weight_ok {
            return Err(NetsError::InconsistentSample {
                index,
                found: format!("{}×{} with a target of the wrong size or layout", s.image.width, s.image.height),
                expected: format!("{w}×{h} RGB with a matching target for {classes} classes"),
            });
        }
    }
    Ok((w, h))
}

/// A batch on the device: images, soft targets and weights.
pub(crate) struct Batch {
    pub images: Tensor<4>,
    pub targets: Tensor<4>,
    pub weights: Tensor<4>,
    pub len: usize,
}

/// Builds a batch from `indices`, flipping each sample when `flips` says so.
pub(crate) fn make_batch(samples: &[Sample], indices: &[usize], classes: usize, flips: Option<&mut Rng>, device: &Device) -> Batch {
    let first = &samples[indices[0]].image;
    let (w, h) = (first.width, first.height);
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
        let src = |p: usize| {
            let (px, py) = (p % w, p / w);
            let sx = if fx { w - 1 - px } else { px };
            let sy = if fy { h - 1 - py } else { py };
            sy * w + sx
        };
        for p in 0..plane {
            let q = src(p);
            for c in 0..3 {
                x[(b * 3 + c) * plane + p] = s.image.pixels[c * plane + q];
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
                        t[(b * classes + c) * plane + p] = probs[c * plane + q];
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
