//! Batched inference: class probabilities for whole sets of images.

use burn::tensor::Device;
use burn::tensor::activation::softmax;
use echoseg_scene::Image;

use crate::NetsError;
use crate::arch::Network;
use crate::data::image_batch;

/// Per-pixel class probabilities of one image, class-planar (classes × height × width).
#[derive(Clone, Debug, PartialEq)]
pub struct Probabilities {
    /// Number of classes.
    pub classes: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Class-planar probabilities.
    pub values: Vec<f32>,
}

impl Probabilities {
    /// The most probable class per pixel, row-major.
    pub fn argmax(&self) -> Vec<u8> {
        let plane = self.width * self.height;
        (0..plane)
            .map(|p| {
                let mut best = 0;
                for c in 1..self.classes {
                    if self.values[c * plane + p] > self.values[best * plane + p] {
                        best = c;
                    }
                }
                best as u8
            })
            .collect()
    }

    /// The probability of the most probable class per pixel.
    pub fn confidence(&self) -> Vec<f32> {
        let plane = self.width * self.height;
        (0..plane).map(|p| (0..self.classes).map(|c| self.values[c * plane + p]).fold(0.0, f32::max)).collect()
    }
}

/// Class probabilities for every image, `batch_size` images at a time, with an inference-mode network.
pub fn predict(network: &Network, images: &[&Image], batch_size: usize, device: &Device) -> Result<Vec<Probabilities>, NetsError> {
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch_size.max(1)) {
        let logits = network.forward(image_batch(chunk, device)).logits;
        let [n, k, h, w] = logits.dims();
        let values = softmax(logits, 1).into_data().try_into_vec::<f32>().map_err(|e| NetsError::Readback(format!("{e:?}")))?;
        let per = k * h * w;
        for i in 0..n {
            out.push(Probabilities { classes: k, width: w, height: h, values: values[i * per..(i + 1) * per].to_vec() });
        }
    }
    Ok(out)
}
