//! Sample test images for the report's panels: each image, its truth and what every source drew
//! on it (a simulated source labels it now; a folder source shows its mask there, if it has one),
//! stored beside the run store so the report never regenerates data.

use echoseg_nets::IGNORE;
use serde::{Deserialize, Serialize};

use crate::StudyError;
use crate::plan::data::StudyData;
use crate::plan::manifest::Manifest;
use crate::store::{StudyDir, write_image_png, write_json, write_labels};

/// How many test images the report shows.
pub const SAMPLES: usize = 3;

/// What `samples/samples.json` lists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleIndex {
    /// Test-split positions of the samples (the rows of every run's `test.labels`).
    pub test_positions: Vec<usize>,
    /// Scene names, for captions.
    pub names: Vec<String>,
    /// Names of the label maps stored per sample, in order: `truth`, then each source.
    pub maps: Vec<String>,
    /// Class names, background first.
    pub classes: Vec<String>,
}

/// Writes the first [`SAMPLES`] test images (`image-K.png`), their label maps (`labels.labels`,
/// sample-major, [`IGNORE`] where a map is unknown) and `samples.json` under `samples/`.
pub fn write_samples(manifest: &Manifest, data: &StudyData, dir: &StudyDir) -> Result<(), StudyError> {
    let chosen: Vec<usize> = (0..data.test.len().min(SAMPLES)).collect();
    let (mut maps, mut sizes) = (Vec::new(), Vec::new());
    for (k, &i) in chosen.iter().enumerate() {
        let scene = &data.test[i];
        write_image_png(&dir.sample_image(k), &scene.image)?;
        let (w, h) = (scene.image.width, scene.image.height);
        let unknown = || vec![IGNORE; w * h];
        maps.push(scene.truth_labels().map(|t| t.labels.clone()).unwrap_or_else(unknown));
        for s in 0..manifest.sources.len() {
            // A source that cannot label this image (it needs truth the image lacks, or has no mask there) shows as unknown.
            maps.push(data.source_mask_on_test(manifest, s, i).map_or_else(unknown, |l| l.labels));
        }
        sizes.resize(maps.len(), (w, h));
    }
    write_labels(&dir.samples_labels(), &sizes, &maps)?;
    let index = SampleIndex {
        test_positions: chosen.clone(),
        names: chosen.iter().map(|&i| data.test[i].name.clone()).collect(),
        maps: std::iter::once("truth".to_string()).chain(manifest.sources.iter().map(|s| s.name.clone())).collect(),
        classes: data.classes.names().to_vec(),
    };
    write_json(&dir.samples_index(), &index)
}
