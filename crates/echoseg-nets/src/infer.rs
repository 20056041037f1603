//! Batched inference: class probabilities for whole sets of images.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use echoseg_scene::Image;

use crate::NetsError;
use crate::arch::Network;
use crate::data::{image_batch, read_back};

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
        out.extend(probabilities_of(network.forward(image_batch(chunk, device)).logits)?);
    }
    Ok(out)
}

fn probabilities_of(logits: Tensor<4>) -> Result<Vec<Probabilities>, NetsError> {
    let [n, k, h, w] = logits.dims();
    let values = read_back(softmax(logits, 1))?;
    let per = k * h * w;
    Ok((0..n).map(|i| Probabilities { classes: k, width: w, height: h, values: values[i * per..(i + 1) * per].to_vec() }).collect())
}

/// Embeddings of one batch as unit vectors, pixel-major (`[image][pixel][channel]`); a zero
/// embedding stays zero.
fn unit_embeddings(embedding: Tensor<4>) -> Result<(usize, Vec<f32>), NetsError> {
    let [n, d, h, w] = embedding.dims();
    let values = read_back(embedding)?;
    let plane = h * w;
    let mut out = vec![0.0f32; n * plane * d];
    for i in 0..n {
        for p in 0..plane {
            let v = &mut out[(i * plane + p) * d..(i * plane + p + 1) * d];
            for (c, x) in v.iter_mut().enumerate() {
                *x = values[(i * d + c) * plane + p];
            }
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 1e-12 {
                v.iter_mut().for_each(|x| *x /= norm);
            }
        }
    }
    Ok((d, out))
}

/// Class probabilities as [`predict`], plus each pixel's angular hardness: the angle in radians
/// (0 ..= π) between the pixel's embedding and the centre of its predicted class, the mean unit
/// embedding of every pixel of `images` predicted as that class. Easy pixels sit close to their
/// class centre; a pixel with a zero embedding gets π/2 (no evidence either way).
///
/// The centres need every image first, so the images go through the network twice rather than
/// keeping every embedding in memory.
pub fn predict_with_hardness(
    network: &Network,
    images: &[&Image],
    batch_size: usize,
    device: &Device,
) -> Result<(Vec<Probabilities>, Vec<Vec<f32>>), NetsError> {
    let mut probabilities = Vec::with_capacity(images.len());
    let mut centres: Vec<Vec<f64>> = Vec::new();
    for chunk in images.chunks(batch_size.max(1)) {
        let out = network.forward(image_batch(chunk, device));
        let first = probabilities.len();
        probabilities.extend(probabilities_of(out.logits)?);
        let (d, unit) = unit_embeddings(out.embedding)?;
        centres.resize(probabilities[first].classes, vec![0.0; d]);
        for (i, p) in probabilities[first..].iter().enumerate() {
            let plane = p.width * p.height;
            if unit.len() != chunk.len() * plane * d {
                return Err(NetsError::Readback(format!(
                    "the embedding is not at the logits' resolution ({} values for {plane} pixels)",
                    unit.len()
                )));
            }
            for (q, &c) in p.argmax().iter().enumerate() {
                let v = &unit[(i * plane + q) * d..(i * plane + q + 1) * d];
                centres[usize::from(c)].iter_mut().zip(v).for_each(|(a, &x)| *a += f64::from(x));
            }
        }
    }
    let centres: Vec<Vec<f32>> = centres
        .iter()
        .map(|c| {
            let norm = c.iter().map(|x| x * x).sum::<f64>().sqrt();
            c.iter().map(|&x| if norm > 0.0 { (x / norm) as f32 } else { 0.0 }).collect()
        })
        .collect();
    let mut hardness = Vec::with_capacity(images.len());
    for (b, chunk) in images.chunks(batch_size.max(1)).enumerate() {
        let (d, unit) = unit_embeddings(network.forward(image_batch(chunk, device)).embedding)?;
        for i in 0..chunk.len() {
            let p = &probabilities[b * batch_size.max(1) + i];
            let plane = p.width * p.height;
            let labels = p.argmax();
            hardness.push(
                (0..plane)
                    .map(|q| {
                        let v = &unit[(i * plane + q) * d..(i * plane + q + 1) * d];
                        let centre = &centres[usize::from(labels[q])];
                        let dot: f32 = v.iter().zip(centre).map(|(a, b)| a * b).sum();
                        let norms = v.iter().any(|x| *x != 0.0) && centre.iter().any(|x| *x != 0.0);
                        if norms { dot.clamp(-1.0, 1.0).acos() } else { std::f32::consts::FRAC_PI_2 }
                    })
                    .collect(),
            );
        }
    }
    Ok((probabilities, hardness))
}
