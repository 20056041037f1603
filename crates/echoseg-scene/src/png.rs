//! Image input (PNG, JPEG, TIFF) and PNG output of images and label maps.

use std::path::{Path, PathBuf};

use crate::raster::{Image, LabelMap};

/// Why an image or mask file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageFileError {
    /// The file could not be opened, decoded or written.
    #[error("{}: {message}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The decoder's or the file system's message.
        message: String,
    },
    /// The file decodes to an image without pixels.
    #[error("{}: the image has no pixels", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> ImageFileError {
    ImageFileError::Unreadable { path: path.to_path_buf(), message: e.to_string() }
}

/// Reads an RGB image (grey and alpha images are converted; alpha is ignored).
pub fn read_image(path: &Path) -> Result<Image, ImageFileError> {
    read_image_with_depth(path).map(|(image, _)| image)
}

/// Bits per channel of an image file as decoded: 8, or 16 (and 32-bit float) read at full precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitDepth {
    /// 8 bits per channel: values / 255.
    Eight,
    /// More than 8 bits per channel: values / 65535 (or as stored, for float images).
    Deep,
}

/// Reads an image and says how deep its channels were, so a dataset of 16-bit images that use
/// only part of the range (a 12-bit camera) can be rescaled as a whole.
pub fn read_image_with_depth(path: &Path) -> Result<(Image, BitDepth), ImageFileError> {
    let decoded = image::open(path).map_err(|e| unreadable(path, e))?;
    if decoded.width() == 0 || decoded.height() == 0 {
        return Err(ImageFileError::Empty { path: path.to_path_buf() });
    }
    let (w, h) = (decoded.width() as usize, decoded.height() as usize);
    let deep = !matches!(decoded.color(), image::ColorType::L8 | image::ColorType::La8 | image::ColorType::Rgb8 | image::ColorType::Rgba8);
    if !deep {
        return Ok((Image::from_rgb8(w, h, decoded.to_rgb8().as_raw()), BitDepth::Eight));
    }
    let rgb = decoded.to_rgb32f();
    let plane = w * h;
    let mut pixels = vec![0.0; 3 * plane];
    for (i, px) in rgb.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            pixels[c * plane + i] = px[c];
        }
    }
    Ok((Image { width: w, height: h, pixels }, BitDepth::Deep))
}

/// Writes an image as 8-bit RGB PNG.
pub fn write_image(path: &Path, image: &Image) -> Result<(), ImageFileError> {
    image::save_buffer(path, &image.to_rgb8(), image.width as u32, image.height as u32, image::ExtendedColorType::Rgb8)
        .map_err(|e| unreadable(path, e))
}

/// An image encoded as 8-bit RGB PNG bytes (for writers that place the file themselves, atomically).
pub fn encode_image(image: &Image) -> Result<Vec<u8>, ImageFileError> {
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        &image.to_rgb8(),
        image.width as u32,
        image.height as u32,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| ImageFileError::Unreadable { path: "(in memory)".into(), message: e.to_string() })?;
    Ok(out)
}

/// Reads a label map stored as class indices in a grey PNG.
pub fn read_label_map(path: &Path) -> Result<LabelMap, ImageFileError> {
    let img = image::open(path).map_err(|e| unreadable(path, e))?.to_luma8();
    if img.width() == 0 || img.height() == 0 {
        return Err(ImageFileError::Empty { path: path.to_path_buf() });
    }
    Ok(LabelMap { width: img.width() as usize, height: img.height() as usize, labels: img.into_raw() })
}

/// Writes a label map as class indices in a grey PNG.
pub fn write_label_map(path: &Path, map: &LabelMap) -> Result<(), ImageFileError> {
    image::save_buffer(path, &map.labels, map.width as u32, map.height as u32, image::ExtendedColorType::L8)
        .map_err(|e| unreadable(path, e))
}
