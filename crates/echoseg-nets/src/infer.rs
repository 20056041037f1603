//! Batched inference: class probabilities for whole sets of images.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use echoseg_scene::Image;

use crate::NetsError;
use crate::arch::Network;
use crate::data::{Window, batches_by_size, image_batch, read_back, tile_starts};

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

/// How images too large to segment whole are cut: square tiles of `side` px, neighbours sharing
/// at least `overlap` px. Each pixel's output comes from the tile whose centre it is nearest, so
/// no pixel is taken from closer than `overlap / 2` to a tile's inner edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiling {
    /// Side of a tile; images with both sides within it are segmented whole.
    pub side: usize,
    /// Pixels neighbouring tiles share, at least.
    pub overlap: usize,
}

impl Tiling {
    /// Tiles of `side` px, neighbours sharing an eighth of it.
    pub fn with_side(side: usize) -> Self {
        Self { side, overlap: side / 8 }
    }
}

impl Default for Tiling {
    /// Tiles of 256 px sharing 32 px: wider than the receptive field of every reference architecture.
    fn default() -> Self {
        Self::with_side(256)
    }
}

/// Class probabilities for every image, `batch_size` images (or tiles) at a time, with an
/// inference-mode network; images larger than the default [`Tiling`] are segmented in tiles.
pub fn predict(network: &Network, images: &[&Image], batch_size: usize, device: &Device) -> Result<Vec<Probabilities>, NetsError> {
    predict_tiled(network, images, batch_size, Tiling::default(), device)
}

/// [`predict`] with the tiling given.
pub fn predict_tiled(
    network: &Network,
    images: &[&Image],
    batch_size: usize,
    tiling: Tiling,
    device: &Device,
) -> Result<Vec<Probabilities>, NetsError> {
    let mut out: Vec<Option<Probabilities>> = vec![None; images.len()];
    let wanted = Wanted { probabilities: true, embedding: false };
    segment(network, images, batch_size, tiling, wanted, device, &mut |i, p, _| {
        out[i] = p;
        Ok(())
    })?;
    out.into_iter().map(|p| p.ok_or_else(|| missing("probabilities"))).collect()
}

/// Which outputs a pass over the images reads back.
#[derive(Clone, Copy)]
struct Wanted {
    probabilities: bool,
    embedding: bool,
}

/// The error for an output a pass was asked for but did not give (a bug, not bad input).
fn missing(what: &str) -> NetsError {
    NetsError::Readback(format!("the network's {what} were not read back"))
}

/// One forward pass's outputs per image, each when wanted.
type BatchOutputs = (Option<Vec<Probabilities>>, Option<Vec<Embedding>>);

/// One image's embedding at its full size, channel-planar.
struct Embedding {
    channels: usize,
    values: Vec<f32>,
}

/// What [`segment`] hands over per image: its index, its probabilities and its embedding (each
/// when wanted).
type EachImage<'f> = dyn FnMut(usize, Option<Probabilities>, Option<Embedding>) -> Result<(), NetsError> + 'f;

/// Runs `network` over `images`: those that fit in a tile whole, batched by size in their
/// order, the others tile by tile, stitched back to their full size.
fn segment(
    network: &Network,
    images: &[&Image],
    batch_size: usize,
    tiling: Tiling,
    wanted: Wanted,
    device: &Device,
    each: &mut EachImage<'_>,
) -> Result<(), NetsError> {
    let fits = |i: &Image| i.width <= tiling.side && i.height <= tiling.side;
    let whole: Vec<usize> = (0..images.len()).filter(|&i| fits(images[i])).collect();
    let sizes: Vec<(usize, usize)> = whole.iter().map(|&i| (images[i].width, images[i].height)).collect();
    for chunk in batches_by_size(&sizes, batch_size) {
        let batch: Vec<&Image> = chunk.iter().map(|&k| images[whole[k]]).collect();
        let (probabilities, embedding) = forward_batch(network, &batch, wanted, device)?;
        let mut embedding = embedding.map(Vec::into_iter);
        for (b, &k) in chunk.iter().enumerate() {
            let p = probabilities.as_ref().map(|p| p[b].clone());
            each(whole[k], p, embedding.as_mut().and_then(Iterator::next))?;
        }
    }
    for (i, image) in images.iter().enumerate().filter(|(_, i)| !fits(i)) {
        let (probabilities, embedding) = segment_in_tiles(network, image, batch_size, tiling, wanted, device)?;
        each(i, probabilities, embedding)?;
    }
    Ok(())
}

/// One forward pass over images of one size: their probabilities and embeddings, as wanted.
fn forward_batch(network: &Network, images: &[&Image], wanted: Wanted, device: &Device) -> Result<BatchOutputs, NetsError> {
    let out = network.forward(image_batch(images, device));
    let probabilities = if wanted.probabilities { Some(probabilities_of(out.logits)?) } else { None };
    let embedding = if wanted.embedding {
        let [n, d, h, w] = out.embedding.dims();
        let values = read_back(out.embedding)?;
        let per = d * h * w;
        Some((0..n).map(|i| Embedding { channels: d, values: values[i * per..(i + 1) * per].to_vec() }).collect())
    } else {
        None
    };
    Ok((probabilities, embedding))
}

/// Which part of an axis each tile along it supplies: from the middle of its overlap with the
/// previous tile to the middle of its overlap with the next.
fn owned_spans(starts: &[usize], side: usize, length: usize) -> Vec<(usize, usize)> {
    let cut = |i: usize| (starts[i + 1] + starts[i] + side) / 2;
    (0..starts.len()).map(|i| (if i == 0 { 0 } else { cut(i - 1) }, if i + 1 == starts.len() { length } else { cut(i) })).collect()
}

/// One image segmented tile by tile, each tile's owned part copied into the full-size outputs.
fn segment_in_tiles(
    network: &Network,
    image: &Image,
    batch_size: usize,
    tiling: Tiling,
    wanted: Wanted,
    device: &Device,
) -> Result<(Option<Probabilities>, Option<Embedding>), NetsError> {
    let (w, h) = (image.width, image.height);
    let (tw, th) = (tiling.side.min(w), tiling.side.min(h));
    let (xs, ys) = (tile_starts(w, tw, tiling.overlap), tile_starts(h, th, tiling.overlap));
    let (x_spans, y_spans) = (owned_spans(&xs, tw, w), owned_spans(&ys, th, h));
    let windows: Vec<(usize, usize)> = (0..ys.len()).flat_map(|r| (0..xs.len()).map(move |c| (r, c))).collect();
    let (mut probabilities, mut embedding): (Option<Probabilities>, Option<Embedding>) = (None, None);
    for chunk in windows.chunks(batch_size.max(1)) {
        let cut: Vec<Image> = chunk.iter().map(|&(r, c)| Window { x: xs[c], y: ys[r], width: tw, height: th }.image(image)).collect();
        let (p, e) = forward_batch(network, &cut.iter().collect::<Vec<_>>(), wanted, device)?;
        for (b, &(r, c)) in chunk.iter().enumerate() {
            let paste = |from: &[f32], channels: usize, into: &mut Vec<f32>| {
                let ((x0, x1), (y0, y1)) = (x_spans[c], y_spans[r]);
                for k in 0..channels {
                    for y in y0..y1 {
                        let src = k * tw * th + (y - ys[r]) * tw + (x0 - xs[c]);
                        into[k * w * h + y * w + x0..k * w * h + y * w + x1].copy_from_slice(&from[src..src + (x1 - x0)]);
                    }
                }
            };
            if let Some(p) = &p {
                let k = p[b].classes;
                let full =
                    probabilities.get_or_insert_with(|| Probabilities { classes: k, width: w, height: h, values: vec![0.0; k * w * h] });
                paste(&p[b].values, k, &mut full.values);
            }
            if let Some(e) = &e {
                let d = e[b].channels;
                let full = embedding.get_or_insert_with(|| Embedding { channels: d, values: vec![0.0; d * w * h] });
                paste(&e[b].values, d, &mut full.values);
            }
        }
    }
    Ok((probabilities, embedding))
}

fn probabilities_of(logits: Tensor<4>) -> Result<Vec<Probabilities>, NetsError> {
    let [n, k, h, w] = logits.dims();
    let values = read_back(softmax(logits, 1))?;
    let per = k * h * w;
    Ok((0..n).map(|i| Probabilities { classes: k, width: w, height: h, values: values[i * per..(i + 1) * per].to_vec() }).collect())
}

/// One image's embedding as unit vectors, pixel-major (`[pixel][channel]`); a zero embedding
/// stays zero. Refused when it is not at the probabilities' resolution.
fn unit_embedding(embedding: &Embedding, plane: usize) -> Result<Vec<f32>, NetsError> {
    let d = embedding.channels;
    if embedding.values.len() != d * plane {
        return Err(NetsError::Readback(format!(
            "the embedding is not at the logits' resolution ({} values for {plane} pixels)",
            embedding.values.len()
        )));
    }
    let mut out = vec![0.0f32; plane * d];
    for p in 0..plane {
        let v = &mut out[p * d..(p + 1) * d];
        for (c, x) in v.iter_mut().enumerate() {
            *x = embedding.values[c * plane + p];
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 1e-12 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
    }
    Ok(out)
}

/// Class probabilities as [`predict_tiled`], plus each pixel's angular hardness: the angle in radians
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
    tiling: Tiling,
    device: &Device,
) -> Result<(Vec<Probabilities>, Vec<Vec<f32>>), NetsError> {
    let mut probabilities: Vec<Option<Probabilities>> = vec![None; images.len()];
    let mut centres: Vec<Vec<f64>> = Vec::new();
    segment(network, images, batch_size, tiling, Wanted { probabilities: true, embedding: true }, device, &mut |i, p, e| {
        let (p, e) = (p.ok_or_else(|| missing("probabilities"))?, e.ok_or_else(|| missing("embeddings"))?);
        let plane = p.width * p.height;
        let unit = unit_embedding(&e, plane)?;
        let d = e.channels;
        centres.resize(p.classes, vec![0.0; d]);
        for (q, &c) in p.argmax().iter().enumerate() {
            let v = &unit[q * d..(q + 1) * d];
            centres[usize::from(c)].iter_mut().zip(v).for_each(|(a, &x)| *a += f64::from(x));
        }
        probabilities[i] = Some(p);
        Ok(())
    })?;
    let probabilities: Vec<Probabilities> =
        probabilities.into_iter().map(|p| p.ok_or_else(|| missing("probabilities"))).collect::<Result<_, _>>()?;
    let centres: Vec<Vec<f32>> = centres
        .iter()
        .map(|c| {
            let norm = c.iter().map(|x| x * x).sum::<f64>().sqrt();
            c.iter().map(|&x| if norm > 0.0 { (x / norm) as f32 } else { 0.0 }).collect()
        })
        .collect();
    let mut hardness: Vec<Vec<f32>> = vec![Vec::new(); images.len()];
    segment(network, images, batch_size, tiling, Wanted { probabilities: false, embedding: true }, device, &mut |i, _, e| {
        let (p, e) = (&probabilities[i], e.ok_or_else(|| missing("embeddings"))?);
        let plane = p.width * p.height;
        let (d, unit) = (e.channels, unit_embedding(&e, plane)?);
        let labels = p.argmax();
        hardness[i] = (0..plane)
            .map(|q| {
                let v = &unit[q * d..(q + 1) * d];
                let centre = &centres[usize::from(labels[q])];
                let dot: f32 = v.iter().zip(centre).map(|(a, b)| a * b).sum();
                let norms = v.iter().any(|x| *x != 0.0) && centre.iter().any(|x| *x != 0.0);
                if norms { dot.clamp(-1.0, 1.0).acos() } else { std::f32::consts::FRAC_PI_2 }
            })
            .collect();
        Ok(())
    })?;
    Ok((probabilities, hardness))
}

#[cfg(test)]
mod tests {
    use burn::module::Module;

    use super::*;
    use crate::arch::{Architecture, NetworkSpec};
    use crate::init::init_network;

    fn image(width: usize, height: usize) -> Image {
        Image { width, height, pixels: (0..3 * width * height).map(|i| ((i * 37 + i / 7) % 29) as f32 / 29.0).collect() }
    }

    #[test]
    fn tiles_stitch_back_to_the_whole_image_when_the_overlap_covers_the_receptive_field() {
        // fcn of depth 2: two 3×3 convolutions, so a pixel sees 2 px around it. With 8 px of
        // overlap every pixel comes from 4 px or more inside its tile: tiles change nothing.
        let device = Device::flex();
        let spec = NetworkSpec { architecture: Architecture::Fcn, width: 4, depth: 2, inputs: 3, classes: 3, pretrain: None };
        let network = init_network(&spec, 7, &device).valid();
        let images = [image(40, 30), image(16, 16), image(23, 41)];
        let refs: Vec<&Image> = images.iter().collect();
        let whole = predict_tiled(&network, &refs, 4, Tiling { side: 64, overlap: 0 }, &device).unwrap();
        let tiled = predict_tiled(&network, &refs, 4, Tiling { side: 16, overlap: 8 }, &device).unwrap();
        for (a, b) in whole.iter().zip(&tiled) {
            assert_eq!((a.width, a.height, a.classes), (b.width, b.height, b.classes));
            let worst = a.values.iter().zip(&b.values).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(worst < 1e-5, "{}×{}: tiles differ from the whole image by {worst}", a.width, a.height);
        }
        // Too little overlap shows: the tile borders' zero padding reaches the taken pixels.
        let seams = predict_tiled(&network, &refs, 4, Tiling { side: 16, overlap: 0 }, &device).unwrap();
        let worst = whole[0].values.iter().zip(&seams[0].values).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(worst > 1e-4, "a seam without overlap should be visible, got {worst}");
    }

    #[test]
    fn hardness_of_mixed_sizes_is_per_image_and_matches_a_one_size_run() {
        let device = Device::flex();
        let spec = NetworkSpec { architecture: Architecture::Fcn, width: 4, depth: 2, inputs: 3, classes: 2, pretrain: None };
        let network = init_network(&spec, 3, &device).valid();
        let images = [image(20, 12), image(9, 30)];
        let refs: Vec<&Image> = images.iter().collect();
        let (probabilities, hardness) = predict_with_hardness(&network, &refs, 8, Tiling::default(), &device).unwrap();
        for ((p, h), i) in probabilities.iter().zip(&hardness).zip(&images) {
            assert_eq!((p.width, p.height, h.len()), (i.width, i.height, i.width * i.height));
            assert!(h.iter().all(|a| (0.0..=std::f32::consts::PI).contains(a)));
        }
        assert_eq!(probabilities, predict(&network, &refs, 1, &device).unwrap(), "batching by size changes nothing");
    }
}
