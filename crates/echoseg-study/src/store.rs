//! The run store: every path a study reads or writes comes from [`StudyDir`] and [`RunDir`],
//! and every file is written atomically (temporary file, then rename), so a killed study leaves
//! either the old file or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::{CsvWriter, DataFrame, ParquetReader, ParquetWriter, PolarsError, SerReader, SerWriter};

use crate::StudyError;

/// The directory of one study: `reports/NAME/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StudyDir {
    root: PathBuf,
}

impl StudyDir {
    /// Headline numbers with bootstrap intervals (Parquet).
    pub fn summary_parquet(&self) -> PathBuf {
        self.root.join("summary.parquet")
    }

    /// Headline numbers with bootstrap intervals (CSV).
    pub fn summary_csv(&self) -> PathBuf {
        self.root.join("summary.csv")
    }

    /// Bias changes between generations with intervals and verdicts (Parquet).
    pub fn verdicts_parquet(&self) -> PathBuf {
        self.root.join("verdicts.parquet")
    }

    /// Bias changes between generations with intervals and verdicts (CSV).
    pub fn verdicts_csv(&self) -> PathBuf {
        self.root.join("verdicts.csv")
    }

    /// Each pre-trained model against its architecture without pre-training, per metric (Parquet).
    pub fn pretraining_parquet(&self) -> PathBuf {
        self.root.join("pretraining.parquet")
    }

    /// The same as CSV.
    pub fn pretraining_csv(&self) -> PathBuf {
        self.root.join("pretraining.csv")
    }

    /// The gap recovered by every teacher→student pair (studies with a ceiling only).
    pub fn gap_parquet(&self) -> PathBuf {
        self.root.join("gap.parquet")
    }

    /// The gap table as CSV.
    pub fn gap_csv(&self) -> PathBuf {
        self.root.join("gap.csv")
    }

    /// Every bias's trend over generations (studies with two or more generations only).
    pub fn trends_parquet(&self) -> PathBuf {
        self.root.join("trends.parquet")
    }

    /// The trends table as CSV.
    pub fn trends_csv(&self) -> PathBuf {
        self.root.join("trends.csv")
    }

    /// Every target judged for every configuration (Parquet).
    pub fn targets_parquet(&self) -> PathBuf {
        self.root.join("targets.parquet")
    }

    /// The same as CSV.
    pub fn targets_csv(&self) -> PathBuf {
        self.root.join("targets.csv")
    }

    /// Sample test images with their truth and source labels, for the report's panels.
    pub fn samples(&self) -> PathBuf {
        self.root.join("samples")
    }

    /// What the sample images are (`samples/samples.json`).
    pub fn samples_index(&self) -> PathBuf {
        self.samples().join("samples.json")
    }

    /// The sample images' label maps (`samples/labels.labels`).
    pub fn samples_labels(&self) -> PathBuf {
        self.samples().join("labels.labels")
    }

    /// The `k`-th sample image (`samples/image-K.png`).
    pub fn sample_image(&self, k: usize) -> PathBuf {
        self.samples().join(format!("image-{k}.png"))
    }

    /// Each source's masks and each configuration's committee mask on the test images against truth (Parquet).
    pub fn masks_parquet(&self) -> PathBuf {
        self.root.join("masks.parquet")
    }

    /// The same as CSV.
    pub fn masks_csv(&self) -> PathBuf {
        self.root.join("masks.csv")
    }

    /// Every labelled image of every source ranked by label quality (Parquet).
    pub fn label_issues_parquet(&self) -> PathBuf {
        self.root.join("label_issues.parquet")
    }

    /// The same as CSV.
    pub fn label_issues_csv(&self) -> PathBuf {
        self.root.join("label_issues.csv")
    }

    /// How well label-issue scores find each source's true errors (Parquet).
    pub fn label_issue_quality_parquet(&self) -> PathBuf {
        self.root.join("label_issue_quality.parquet")
    }

    /// The same as CSV.
    pub fn label_issue_quality_csv(&self) -> PathBuf {
        self.root.join("label_issue_quality.csv")
    }

    /// Given → predicted class counts per source (Parquet).
    pub fn label_issue_confusions_parquet(&self) -> PathBuf {
        self.root.join("label_issue_confusions.parquet")
    }

    /// The same as CSV.
    pub fn label_issue_confusions_csv(&self) -> PathBuf {
        self.root.join("label_issue_confusions.csv")
    }

    /// The worst images per source with their maps, and the optional .npy exports.
    pub fn label_issues(&self) -> PathBuf {
        self.root.join("label_issues")
    }

    /// What the worst images are (`label_issues/worst.json`).
    pub fn worst_index(&self) -> PathBuf {
        self.label_issues().join("worst.json")
    }

    /// The worst images' maps (`label_issues/worst.labels`).
    pub fn worst_labels(&self) -> PathBuf {
        self.label_issues().join("worst.labels")
    }

    /// One of a source's optional NumPy exports (`label_issues/SOURCE.WHAT.npy`).
    pub fn label_issue_npy(&self, source: &str, what: &str) -> PathBuf {
        self.label_issues().join(format!("{source}.{what}.npy"))
    }

    /// The `k`-th worst image (`label_issues/worst-K.png`).
    pub fn worst_image(&self, k: usize) -> PathBuf {
        self.label_issues().join(format!("worst-{k}.png"))
    }

    /// What `echoseg run` was given (manifest and overrides), for `echoseg merge` and `echoseg export`.
    pub fn invocation(&self) -> PathBuf {
        self.root.join("invocation.json")
    }

    /// The study `name` under the reports directory `reports`.
    pub fn new(reports: &Path, name: &str) -> Self {
        Self { root: reports.join(name) }
    }

    /// A study directory given by its path.
    pub fn at(root: PathBuf) -> Self {
        Self { root }
    }

    /// `reports/NAME/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The report's entry page.
    pub fn index_html(&self) -> PathBuf {
        self.root.join("index.html")
    }

    /// Where figures go (beside the page).
    pub fn figures(&self) -> PathBuf {
        self.root.join("figures")
    }

    /// One row per model × generation × strategy × seed × metric, as Parquet.
    pub fn results_parquet(&self) -> PathBuf {
        self.root.join("results.parquet")
    }

    /// The same table as CSV.
    pub fn results_csv(&self) -> PathBuf {
        self.root.join("results.csv")
    }

    /// Training and validation loss per run and epoch, as Parquet.
    pub fn history_parquet(&self) -> PathBuf {
        self.root.join("history.parquet")
    }

    /// The same table as CSV.
    pub fn history_csv(&self) -> PathBuf {
        self.root.join("history.csv")
    }

    /// The copy of the manifest that produced the results.
    pub fn manifest_copy(&self) -> PathBuf {
        self.root.join("manifest.toml")
    }

    /// Git revision, versions, device, threads, wall time.
    pub fn provenance(&self) -> PathBuf {
        self.root.join("provenance.json")
    }

    /// Image ids of the train, validation, test and pool splits.
    pub fn splits(&self) -> PathBuf {
        self.root.join("splits.json")
    }

    /// All runs.
    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// The directory of run `id`.
    pub fn run(&self, id: &str) -> RunDir {
        RunDir { root: self.runs().join(id) }
    }
}

/// The directory of one run: `reports/NAME/runs/RUN-ID/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run stored in `root` (a directory `reports/NAME/runs/RUN`).
    pub fn at(root: &Path) -> Self {
        Self { root: root.to_path_buf() }
    }

    /// The run's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The settings that define the run (and its id).
    pub fn settings(&self) -> PathBuf {
        self.root.join("run.json")
    }

    /// The trained weights.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("model.bpk")
    }

    /// The resumable training state (weights and optimiser after each epoch) of an unfinished run.
    pub fn training_state(&self) -> PathBuf {
        self.root.join("training-state")
    }

    /// Predicted labels on the test split.
    pub fn test_labels(&self) -> PathBuf {
        self.root.join("test.labels")
    }

    /// Predicted labels on the synthetic-style test images (studies with a synthetic source).
    pub fn synthetic_labels(&self) -> PathBuf {
        self.root.join("synthetic.labels")
    }

    /// Predicted labels on the test images' twins with the spurious cue flipped (studies with a cue).
    pub fn twin_labels(&self) -> PathBuf {
        self.root.join("twins.labels")
    }

    /// Predicted labels on the unlabelled pool (the next generation's pseudo-labels).
    pub fn pool_labels(&self) -> PathBuf {
        self.root.join("pool.labels")
    }

    /// The top-class probability of every pool pixel, in 1/255 steps (for confidence selection).
    pub fn pool_confidence(&self) -> PathBuf {
        self.root.join("pool-confidence.labels")
    }

    /// The angular hardness of every pool pixel, in π/255 steps (for hardness selection).
    pub fn pool_hardness(&self) -> PathBuf {
        self.root.join("pool-hardness.labels")
    }

    /// A pre-training's record (loss and embedding spread per epoch); written after its
    /// weights, so its presence means the pre-trained weights are complete.
    pub fn pretraining(&self) -> PathBuf {
        self.root.join("pretraining.json")
    }

    /// A cross-fitting run's class probabilities on its held-out images, in 1/255 steps, each
    /// image's class planes stacked (a map of width × height·classes).
    pub fn held_out_probabilities(&self) -> PathBuf {
        self.root.join("held-out-probabilities.labels")
    }

    /// The finished run's metrics and history; written last, so its presence means "done".
    pub fn outcome(&self) -> PathBuf {
        self.root.join("outcome.json")
    }
}

/// Writes `bytes` to `path` atomically, creating parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StudyError> {
    let mut file = PendingFile::create(path)?;
    file.write(bytes)?;
    file.commit()
}

/// Writes `image` as an 8-bit PNG to `path` atomically, creating parent directories.
pub fn write_image_png(path: &Path, image: &echoseg_scene::Image) -> Result<(), StudyError> {
    let png =
        echoseg_scene::png::encode_image(image).map_err(|e| StudyError::Format { path: path.to_path_buf(), message: e.to_string() })?;
    write_atomic(path, &png)
}

/// A name beside `path` for a file being written (same directory, so the rename is atomic).
pub fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `value` as pretty JSON to `path` atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), StudyError> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| StudyError::Format { path: path.to_path_buf(), message: e.to_string() })?;
    write_atomic(path, &text)
}

/// Reads JSON from `path`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StudyError> {
    let bytes = std::fs::read(path).map_err(|source| StudyError::Io { path: path.to_path_buf(), source })?;
    serde_json::from_slice(&bytes).map_err(|e| StudyError::Format { path: path.to_path_buf(), message: e.to_string() })
}

/// The first label-file layout: every map of one size (read, never written).
const LABELS_MAGIC_ONE_SIZE: &[u8; 8] = b"ESLABEL1";
/// The layout written now: each map with its own size.
const LABELS_MAGIC: &[u8; 8] = b"ESLABEL2";

/// Byte maps of images (labels, or quantised confidences and hardness) with each image's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelFile {
    /// Width and height of each map.
    pub sizes: Vec<(usize, usize)>,
    /// The maps, row-major.
    pub maps: Vec<Vec<u8>>,
}

/// Writes byte maps of images of any sizes as one file: magic, count, each map's width and
/// height, then the bytes.
pub fn write_labels(path: &Path, sizes: &[(usize, usize)], maps: &[Vec<u8>]) -> Result<(), StudyError> {
    let bad = |message: String| StudyError::Format { path: path.to_path_buf(), message };
    if sizes.len() != maps.len() {
        return Err(bad(format!("{} maps with {} sizes", maps.len(), sizes.len())));
    }
    if let Some((i, ((w, h), m))) = sizes.iter().zip(maps).enumerate().find(|(_, ((w, h), m))| w * h != m.len()) {
        return Err(bad(format!("map {i} has {} values for {w}×{h} px", m.len())));
    }
    let mut bytes = label_header(sizes);
    bytes.reserve(maps.iter().map(Vec::len).sum::<usize>());
    for m in maps {
        bytes.extend_from_slice(m);
    }
    write_atomic(path, &bytes)
}

/// The header of a label file of maps of `sizes`.
fn label_header(sizes: &[(usize, usize)]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12 + 8 * sizes.len());
    bytes.extend_from_slice(LABELS_MAGIC);
    bytes.extend_from_slice(&(sizes.len() as u32).to_le_bytes());
    for &(w, h) in sizes {
        bytes.extend_from_slice(&(w as u32).to_le_bytes());
        bytes.extend_from_slice(&(h as u32).to_le_bytes());
    }
    bytes
}

/// A file written piece by piece under a temporary name beside its path and renamed into place
/// by [`PendingFile::commit`], so that an interrupted write never leaves half a file.
pub struct PendingFile {
    path: PathBuf,
    temporary: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl PendingFile {
    /// Starts the file at `path`, creating its directory.
    pub fn create(path: &Path) -> Result<Self, StudyError> {
        let parent = path.parent().unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(parent).map_err(|source| StudyError::Io { path: path.to_path_buf(), source })?;
        let temporary = temporary_sibling(path);
        let file = std::fs::File::create(&temporary).map_err(|source| StudyError::Io { path: temporary.clone(), source })?;
        Ok(Self { path: path.to_path_buf(), temporary, file: std::io::BufWriter::new(file) })
    }

    /// The path the file will have.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StudyError> {
        self.file.write_all(bytes).map_err(|source| StudyError::Io { path: self.temporary.clone(), source })
    }

    /// Flushes the file to disk and renames it into place.
    pub fn commit(self) -> Result<(), StudyError> {
        let io = |source| StudyError::Io { path: self.temporary.clone(), source };
        let file = self.file.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&self.temporary, &self.path).map_err(|source| StudyError::Io { path: self.path.clone(), source })
    }
}

/// Writes a label file map by map, so that the maps need not be in memory together; the file
/// appears (atomically) only when the last map is written.
pub struct LabelWriter {
    file: PendingFile,
    sizes: Vec<(usize, usize)>,
    written: usize,
}

impl LabelWriter {
    /// Starts a file of maps of `sizes`.
    pub fn create(path: &Path, sizes: &[(usize, usize)]) -> Result<Self, StudyError> {
        let mut file = PendingFile::create(path)?;
        file.write(&label_header(sizes))?;
        Ok(Self { file, sizes: sizes.to_vec(), written: 0 })
    }

    /// Appends the next map.
    pub fn push(&mut self, map: &[u8]) -> Result<(), StudyError> {
        let bad = |message: String| StudyError::Format { path: self.file.path().to_path_buf(), message };
        let Some(&(w, h)) = self.sizes.get(self.written) else {
            return Err(bad(format!("more than the {} maps announced", self.sizes.len())));
        };
        if map.len() != w * h {
            return Err(bad(format!("map {} has {} values for {w}×{h} px", self.written, map.len())));
        }
        self.file.write(map)?;
        self.written += 1;
        Ok(())
    }

    /// Finishes the file: every announced map must have been written.
    pub fn finish(self) -> Result<(), StudyError> {
        if self.written != self.sizes.len() {
            return Err(StudyError::Format {
                path: self.file.path().to_path_buf(),
                message: format!("{} of {} maps written", self.written, self.sizes.len()),
            });
        }
        self.file.commit()
    }
}

/// Reads single maps of a label file on demand, so that scoring one image at a time does not
/// hold the file in memory.
pub struct LabelReader {
    path: PathBuf,
    file: std::fs::File,
    sizes: Vec<(usize, usize)>,
    offsets: Vec<u64>,
}

impl LabelReader {
    /// Opens a file written by [`LabelWriter`] or [`write_labels`] and checks its length.
    pub fn open(path: &Path) -> Result<Self, StudyError> {
        use std::io::Read;
        let io = |source| StudyError::Io { path: path.to_path_buf(), source };
        let bad = |message: &str| StudyError::Format { path: path.to_path_buf(), message: message.to_string() };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut head = [0u8; 12];
        file.read_exact(&mut head).map_err(|_| bad("truncated label file"))?;
        if &head[..8] != LABELS_MAGIC {
            return Err(bad("not a label file of this echoseg"));
        }
        let n = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
        let mut words = vec![0u8; 8 * n];
        file.read_exact(&mut words).map_err(|_| bad("truncated label file"))?;
        let word = |i: usize| u32::from_le_bytes([words[4 * i], words[4 * i + 1], words[4 * i + 2], words[4 * i + 3]]) as usize;
        let sizes: Vec<(usize, usize)> = (0..n).map(|i| (word(2 * i), word(2 * i + 1))).collect();
        let mut offsets = Vec::with_capacity(n);
        let mut at = (12 + 8 * n) as u64;
        for (w, h) in &sizes {
            offsets.push(at);
            at += (w * h) as u64;
        }
        if file.metadata().map_err(io)?.len() != at {
            return Err(bad("truncated label file"));
        }
        Ok(Self { path: path.to_path_buf(), file, sizes, offsets })
    }

    /// Width and height of each map.
    pub fn sizes(&self) -> &[(usize, usize)] {
        &self.sizes
    }

    /// Map `i`.
    pub fn map(&mut self, i: usize) -> Result<Vec<u8>, StudyError> {
        use std::io::{Read, Seek, SeekFrom};
        let (Some(&(w, h)), Some(&at)) = (self.sizes.get(i), self.offsets.get(i)) else {
            return Err(StudyError::Format { path: self.path.clone(), message: format!("no map {i} of {}", self.sizes.len()) });
        };
        let mut map = vec![0u8; w * h];
        self.file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.read_exact(&mut map))
            .map_err(|source| StudyError::Io { path: self.path.clone(), source })?;
        Ok(map)
    }
}

/// Reads a file written by [`write_labels`] (or by echoseg before maps had their own sizes).
pub fn read_labels(path: &Path) -> Result<LabelFile, StudyError> {
    let bytes = std::fs::read(path).map_err(|source| StudyError::Io { path: path.to_path_buf(), source })?;
    let bad = |message: &str| StudyError::Format { path: path.to_path_buf(), message: message.to_string() };
    let word = |i: usize| -> Result<usize, StudyError> {
        let at = 8 + 4 * i;
        let b = bytes.get(at..at + 4).ok_or_else(|| bad("truncated label file"))?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let (sizes, header) = match bytes.get(..8) {
        Some(m) if m == LABELS_MAGIC_ONE_SIZE => {
            let (n, w, h) = (word(0)?, word(1)?, word(2)?);
            (vec![(w, h); n], 20)
        }
        Some(m) if m == LABELS_MAGIC => {
            let n = word(0)?;
            ((0..n).map(|i| Ok((word(1 + 2 * i)?, word(2 + 2 * i)?))).collect::<Result<Vec<_>, StudyError>>()?, 12 + 8 * n)
        }
        _ => return Err(bad("not an echoseg label file")),
    };
    if bytes.len() != header + sizes.iter().map(|(w, h)| w * h).sum::<usize>() {
        return Err(bad("truncated label file"));
    }
    let mut at = header;
    let maps = sizes
        .iter()
        .map(|(w, h)| {
            at += w * h;
            bytes[at - w * h..at].to_vec()
        })
        .collect();
    Ok(LabelFile { sizes, maps })
}

/// Names the table file a polars error happened in.
pub(crate) fn table_error(path: &Path) -> impl Fn(PolarsError) -> StudyError + '_ {
    move |e| StudyError::Table { path: path.to_path_buf(), message: e.to_string() }
}

/// Writes `frame` as Parquet and as CSV, each atomically.
pub(crate) fn write_frame(frame: &mut DataFrame, parquet: &Path, csv: &Path) -> Result<(), StudyError> {
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes).finish(frame).map_err(table_error(parquet))?;
    write_atomic(parquet, &bytes)?;
    let mut bytes = Vec::new();
    CsvWriter::new(&mut bytes).finish(frame).map_err(table_error(csv))?;
    write_atomic(csv, &bytes)
}

/// Reads a Parquet table written by the study.
pub fn read_table(path: &Path) -> Result<DataFrame, StudyError> {
    let file = std::fs::File::open(path).map_err(|source| StudyError::Io { path: path.to_path_buf(), source })?;
    ParquetReader::new(file).finish().map_err(table_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_of_mixed_sizes_round_trip_and_truncation_is_detected() {
        let dir = std::env::temp_dir().join(format!("echoseg-store-{}", std::process::id()));
        let path = dir.join("x.labels");
        let maps = vec![vec![0, 1, 2, 3, 4, 5], vec![5, 4, 3, 2, 1, 0, 7, 7]];
        let sizes = vec![(3, 2), (2, 4)];
        write_labels(&path, &sizes, &maps).unwrap();
        assert_eq!(read_labels(&path).unwrap(), LabelFile { sizes: sizes.clone(), maps: maps.clone() });
        assert!(write_labels(&path, &[(3, 3), (2, 4)], &maps).unwrap_err().to_string().contains("map 0 has 6 values for 3×3 px"));
        // A study written before maps had their own sizes still reads.
        let mut old = b"ESLABEL1".to_vec();
        [2u32, 3, 2].iter().for_each(|v| old.extend_from_slice(&v.to_le_bytes()));
        old.extend_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        std::fs::write(&path, &old).unwrap();
        assert_eq!(read_labels(&path).unwrap().sizes, vec![(3, 2); 2]);
        write_labels(&path, &sizes, &maps).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(read_labels(&path).unwrap_err().to_string().contains("truncated"));
        assert!(LabelReader::open(&path).is_err());
        // Written map by map, read map by map: the same file.
        let mut writer = LabelWriter::create(&path, &sizes).unwrap();
        assert!(writer.push(&[1, 2]).unwrap_err().to_string().contains("map 0 has 2 values for 3×2 px"));
        writer.push(&maps[0]).unwrap();
        writer.push(&maps[1]).unwrap();
        writer.finish().unwrap();
        let mut reader = LabelReader::open(&path).unwrap();
        assert_eq!((reader.map(1).unwrap(), reader.map(0).unwrap()), (maps[1].clone(), maps[0].clone()));
        assert_eq!(read_labels(&path).unwrap().maps, maps);
        let mut short = LabelWriter::create(&path, &sizes).unwrap();
        short.push(&maps[0]).unwrap();
        assert!(short.finish().unwrap_err().to_string().contains("1 of 2 maps written"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
