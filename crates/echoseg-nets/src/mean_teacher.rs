//! Mean teacher: a student trained on the labelled images plus the unlabelled pool, whose pool
//! targets come online from a teacher whose weights are an exponential moving average of the
//! student's (Tarvainen & Valpola 2017; BYOL's target network is the same average).

use std::borrow::Cow;
use std::path::Path;

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use echoseg_scene::{Image, Rng};
use serde::{Deserialize, Serialize};

use crate::NetsError;
use crate::arch::Network;
use crate::augment::{Augmentation, Geometry, view_of};
use crate::checkpoint::CheckpointStore;
use crate::data::{Window, read_back};
use crate::ema::{detached_copy, ema_update};
use crate::epochs::{Objective, Progress, Step, TrainReport, drive};
use crate::settings::{SettingProblem, Settings, Valid};
use crate::train::{Labelled, TrainingRequest, resume_key, soft_cross_entropy};

/// Settings of a mean-teacher training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmaConfig {
    /// teacher ← decay · teacher + (1 − decay) · student after every step.
    pub decay: f64,
    /// Weight of the pool's consistency loss against the labelled loss, once ramped up.
    pub consistency: f32,
    /// Epochs over which the consistency weight rises to `consistency` (exp(−5(1 − t)²)).
    pub ramp_up: usize,
    /// Pool pixels whose teacher probability is below this carry no loss.
    pub threshold: f32,
    /// Augmentations of the student's view of a pool image.
    pub student_view: Vec<Augmentation>,
    /// Augmentations of the teacher's view (geometric ones must match the student's).
    pub teacher_view: Vec<Augmentation>,
}

impl Default for EmaConfig {
    fn default() -> Self {
        Self {
            decay: 0.99,
            consistency: 1.0,
            ramp_up: 2,
            threshold: 0.7,
            student_view: vec![Augmentation::Flip, Augmentation::Shift, Augmentation::Jitter, Augmentation::Blur],
            teacher_view: vec![Augmentation::Flip, Augmentation::Shift],
        }
    }
}

impl Settings for EmaConfig {
    fn problems(&self) -> Vec<SettingProblem> {
        let mut out = Vec::new();
        if !(0.0..1.0).contains(&self.decay) {
            out.push(("decay".into(), format!("must lie in [0, 1), got {}", self.decay)));
        }
        if !(self.consistency >= 0.0 && self.consistency.is_finite()) {
            out.push(("consistency".into(), format!("must be a non-negative number, got {}", self.consistency)));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            out.push(("threshold".into(), format!("is a probability in [0, 1], got {}", self.threshold)));
        }
        let geometric = |v: &[Augmentation]| {
            let mut g: Vec<Augmentation> = v.iter().copied().filter(|a| a.is_geometric()).collect();
            g.sort();
            g.dedup();
            g
        };
        if geometric(&self.student_view) != geometric(&self.teacher_view) {
            out.push((
                "teacher_view".into(),
                "must list the same geometric augmentations (flip, shift) as student_view: the teacher's labels must line up with the student's pixels".into(),
            ));
        }
        out
    }
}

impl EmaConfig {
    /// The consistency weight at `step` of `steps_per_epoch`.
    fn weight_at(&self, step: usize, steps_per_epoch: usize) -> f32 {
        let ramp = (self.ramp_up * steps_per_epoch) as f32;
        let t = if ramp <= 0.0 { 1.0 } else { (step as f32 / ramp).min(1.0) };
        self.consistency * (-5.0 * (1.0 - t) * (1.0 - t)).exp()
    }
}

/// Trains a student from `initial` (its weights also start the teacher) on the labelled `train`
/// samples and the unlabelled `pool`, the pool's targets coming from the moving-average teacher.
/// Returns the teacher (in inference mode), which is what the mean-teacher method evaluates.
/// Like [`crate::train_resumable`], it keeps its state (student, teacher, optimiser, its place in
/// the pool) in `checkpoint` after every epoch and continues from there when killed.
pub fn train_mean_teacher(
    initial: Network,
    request: &TrainingRequest<'_>,
    ema: &Valid<EmaConfig>,
    pool: &[&Image],
    checkpoint: &Path,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(Network, TrainReport), NetsError> {
    let TrainingRequest { spec, config, seed, device, .. } = *request;
    let pool_sizes: Vec<(usize, usize)> = pool.iter().map(|i| (i.width, i.height)).collect();
    let labelled = Labelled::new(request, &pool_sizes)?;
    let key = format!("{}|mean teacher {ema:?}|pool {}", resume_key(request), pool.len());
    let store = CheckpointStore { dir: checkpoint, key };
    // No early stopping: the method evaluates its last teacher.
    let course = labelled.course(config, 0, Some(store));
    let student = initial.train().fork(&labelled.train_device);
    let teacher = detached_copy(&student, spec, device);
    let objective = MeanTeacher {
        labelled,
        teacher,
        ema,
        pool,
        position: PoolPosition { order: (0..pool.len()).collect(), cursor: pool.len() },
        views: Rng::with_index(seed, "views", 0),
        seed,
    };
    let trained = drive(course, student, objective, progress)?;
    Ok((trained.network, trained.report))
}

/// The order the pool is drawn in and how far into it the draws are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct PoolPosition {
    order: Vec<usize>,
    cursor: usize,
}

/// The labelled loss plus the consistency of the student with its moving-average teacher on
/// the pool.
struct MeanTeacher<'a> {
    labelled: Labelled<'a>,
    /// The moving average of the student, in inference mode.
    teacher: Network,
    ema: &'a EmaConfig,
    pool: &'a [&'a Image],
    position: PoolPosition,
    views: Rng,
    seed: u64,
}

impl MeanTeacher<'_> {
    /// The next `n` pool images, reshuffled at every pass through the pool.
    fn next_pool_images(&mut self, n: usize, global: usize) -> Vec<usize> {
        let (pool, position) = (self.pool.len(), &mut self.position);
        let mut picked = Vec::with_capacity(n);
        while picked.len() < n.min(pool) {
            if position.cursor >= pool {
                Rng::with_index(self.seed, "pool-order", global as u64).shuffle(&mut position.order);
                position.cursor = 0;
            }
            picked.push(position.order[position.cursor]);
            position.cursor += 1;
        }
        picked
    }
}

impl Objective for MeanTeacher<'_> {
    type Model = Network;
    type State = PoolPosition;

    fn start_epoch(&mut self, epoch: usize) {
        self.labelled.start_epoch(epoch);
        self.views = Rng::with_index(self.seed, "views", epoch as u64);
    }

    fn loss(&mut self, student: &Network, batch: &[usize], step: Step) -> Result<Tensor<1>, NetsError> {
        let mut loss = self.labelled.loss(student, batch);
        let weight = self.ema.weight_at(step.global, step.per_epoch);
        if !self.pool.is_empty() && weight > 0.0 {
            let picked = self.next_pool_images(batch.len(), step.global);
            let teacher = &self.teacher;
            let views =
                Views { pool: self.pool, picked: &picked, classes: self.labelled.spec.classes, crop: self.labelled.crop, ema: self.ema };
            let consistency =
                consistency_loss(student, teacher, &views, &mut self.views, self.labelled.device, &self.labelled.train_device)?;
            loss = loss + consistency * weight;
        }
        Ok(loss)
    }

    fn after_step(&mut self, student: &Network) {
        self.teacher = ema_update(self.teacher.clone(), student, self.ema.decay);
    }

    fn end_epoch(&mut self, _student: &Network, _epoch: usize, _train_loss: f32) -> Result<Option<f32>, NetsError> {
        Ok(self.labelled.val_loss(&self.teacher))
    }

    fn output(&self, _student: &Network) -> Network {
        // The teacher is only ever in inference mode, so a clone shares no statistics that move.
        self.teacher.clone()
    }

    fn state(&self) -> PoolPosition {
        self.position.clone()
    }

    fn save_modules(&self, store: &CheckpointStore<'_>, epoch: usize) -> Result<(), NetsError> {
        store.save_module(epoch, "teacher", &self.teacher)
    }

    fn restore(&mut self, store: &CheckpointStore<'_>, epoch: usize, position: PoolPosition) -> Result<Network, NetsError> {
        let (spec, device) = (self.labelled.spec, self.labelled.device);
        self.teacher = store.load_module(epoch, "teacher", Network::new(spec, device))?.valid();
        self.position = position;
        Ok(Network::new(spec, device))
    }
}

/// The pool images one consistency step looks at.
struct Views<'a> {
    pool: &'a [&'a Image],
    picked: &'a [usize],
    classes: usize,
    /// The side of the square crop cut from each image before its views (`None`: whole).
    crop: Option<usize>,
    ema: &'a EmaConfig,
}

/// The student's cross-entropy on its view of the picked pool images against the teacher's
/// confident labels on the teacher's view (same geometry, own photometric changes).
fn consistency_loss(
    student: &Network,
    teacher: &Network,
    views: &Views<'_>,
    rng: &mut Rng,
    device: &Device,
    train_device: &Device,
) -> Result<Tensor<1>, NetsError> {
    let Views { pool, picked, classes, crop, ema } = *views;
    let (w, h) = crop.map_or((pool[picked[0]].width, pool[picked[0]].height), |side| (side, side));
    let plane = w * h;
    let n = picked.len();
    let (mut student_x, mut teacher_x, mut inside) = (Vec::with_capacity(n * 3 * plane), Vec::with_capacity(n * 3 * plane), Vec::new());
    for &i in picked {
        let image = match crop {
            Some(side) => Cow::Owned(Window::random(side, pool[i].width, pool[i].height, rng).image(pool[i])),
            None => Cow::Borrowed(pool[i]),
        };
        let geometry = Geometry::draw(&ema.student_view, rng);
        student_x.extend(view_of(&image, &geometry, &ema.student_view, rng));
        teacher_x.extend(view_of(&image, &geometry, &ema.teacher_view, rng));
        inside.extend((0..plane).map(|p| geometry.source(p % w, p / w, w, h).is_some()));
    }
    let probabilities = read_back(softmax(teacher.forward(Tensor::from_data(TensorData::new(teacher_x, [n, 3, h, w]), device)).logits, 1))?;
    let mut targets = vec![0.0f32; n * classes * plane];
    let mut weights = vec![0.0f32; n * plane];
    for b in 0..n {
        for p in 0..plane {
            let (best, confidence) = (0..classes)
                .map(|c| (c, probabilities[(b * classes + c) * plane + p]))
                .fold((0, f32::MIN), |a, x| if x.1 > a.1 { x } else { a });
            if inside[b * plane + p] && confidence >= ema.threshold {
                targets[(b * classes + best) * plane + p] = 1.0;
                weights[b * plane + p] = 1.0;
            }
        }
    }
    // Pixels below the threshold or outside the shifted image keep weight 0: no loss.
    let logits = student.forward(Tensor::from_data(TensorData::new(student_x, [n, 3, h, w]), train_device)).logits;
    Ok(soft_cross_entropy(
        logits,
        Tensor::from_data(TensorData::new(targets, [n, classes, h, w]), train_device),
        Tensor::from_data(TensorData::new(weights, [n, 1, h, w]), train_device),
    ))
}

#[cfg(test)]
mod tests {
    use burn::optim::{AdamConfig, GradientsParams};

    use super::*;
    use crate::arch::{Architecture, NetworkSpec};
    use crate::data::{Cut, Sample, make_batch};
    use crate::init::init_network;
    use crate::train::{TrainConfig, batch_loss};

    fn spec() -> NetworkSpec {
        NetworkSpec { architecture: Architecture::Fcn, width: 4, depth: 2, inputs: 3, classes: 2, pretrain: None }
    }

    #[test]
    fn the_teacher_is_the_documented_moving_average_after_k_steps() {
        let device = Device::flex();
        let train_device = device.clone().autodiff();
        let mut student = init_network(&spec(), 3, &train_device);
        let mut teacher = detached_copy(&student, &spec(), &device);
        // Hand computation: t_k = d · t_{k−1} + (1 − d) · s_k, on every value.
        let mut expected: Vec<Vec<f32>> = teacher.parameter_values().into_iter().map(|p| p.values).collect();
        let decay = 0.9;
        let images: Vec<Sample> = (0..4)
            .map(|i| {
                let image = Image { width: 8, height: 8, pixels: (0..192).map(|p| ((p * 7 + i * 13) % 17) as f32 / 17.0).collect() };
                Sample::hard(image, (0..64).map(|p| u8::from((p + i) % 3 == 0)).collect())
            })
            .collect();
        let mut optimiser = AdamConfig::new().init();
        for k in 0..3 {
            let batch = make_batch(&images, &[k, k + 1], 2, None, Cut::Whole, &train_device);
            let grads = GradientsParams::from_grads(batch_loss(&student, batch, None).backward(), &student);
            student = optimiser.step(0.05, student, grads);
            teacher = ema_update(teacher, &student, decay);
            let s: Vec<Vec<f32>> = student.valid().parameter_values().into_iter().map(|p| p.values).collect();
            for (e, s) in expected.iter_mut().zip(&s) {
                e.iter_mut().zip(s).for_each(|(e, s)| *e = (decay as f32) * *e + (1.0 - decay as f32) * s);
            }
        }
        let got = teacher.parameter_values();
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            for (a, b) in g.values.iter().zip(e) {
                assert!((a - b).abs() < 1e-5, "teacher {a} against the hand-computed average {b}");
            }
        }
        // The student moved, and the teacher sits strictly between its start and the student.
        let start: Vec<f32> = init_network(&spec(), 3, &device).parameter_values().into_iter().flat_map(|p| p.values).collect();
        let now: Vec<f32> = student.valid().parameter_values().into_iter().flat_map(|p| p.values).collect();
        let teacher: Vec<f32> = got.into_iter().flat_map(|p| p.values).collect();
        assert!(start.iter().zip(&now).any(|(a, b)| (a - b).abs() > 1e-3), "the student did not train");
        assert!(teacher.iter().zip(&now).any(|(t, s)| (t - s).abs() > 1e-4), "the teacher copied the student");
    }

    #[test]
    fn labelled_and_pool_images_of_mixed_sizes_train_on_crops_and_repeat_exactly() {
        let device = Device::flex();
        let image = |i: usize, w: usize, h: usize| Image {
            width: w,
            height: h,
            pixels: (0..3 * w * h).map(|p| ((p * 7 + i * 13) % 17) as f32 / 17.0).collect(),
        };
        let (w, h) = (|i: usize| 12 + i % 4, |i: usize| 14 - i % 2);
        let train: Vec<Sample> =
            (0..6).map(|i| Sample::hard(image(i, w(i), h(i)), (0..w(i) * h(i)).map(|p| u8::from((p + i) % 3 == 0)).collect())).collect();
        let pool_images: Vec<Image> = (0..4).map(|i| image(10 + i, 13 + i, 12 + i)).collect();
        let pool: Vec<&Image> = pool_images.iter().collect();
        let config = TrainConfig { steps: Some(4), batch_size: 3, ..TrainConfig::default() }.validate().unwrap();
        let ema = EmaConfig { ramp_up: 0, threshold: 0.0, ..EmaConfig::default() }.validate().unwrap();
        let run = |label: &str| {
            let dir = std::env::temp_dir().join(format!("echoseg-mt-mixed-{label}-{}", std::process::id()));
            let initial = init_network(&spec(), 3, &device.clone().autodiff());
            let spec = spec();
            let request = TrainingRequest { spec: &spec, config: &config, seed: 3, train: &train, val: &train[..2], device: &device };
            let (teacher, report) = train_mean_teacher(initial, &request, &ema, &pool, &dir, &mut |_| {}).unwrap();
            let _ = std::fs::remove_dir_all(&dir);
            assert!(report.history.iter().all(|e| e.train_loss.is_finite() && e.val_loss.is_some_and(f32::is_finite)));
            teacher.parameter_values().into_iter().flat_map(|p| p.values).collect::<Vec<f32>>()
        };
        assert_eq!(run("a"), run("b"), "crops of labelled and pool images are drawn from the seed");
    }

    #[test]
    fn views_share_geometry_and_mismatched_geometric_augmentations_are_refused() {
        let image = Image { width: 6, height: 6, pixels: (0..108).map(|p| p as f32 / 108.0).collect() };
        let g = Geometry { flip_x: true, flip_y: false, dx: 2, dy: -1 };
        let a = view_of(&image, &g, &[Augmentation::Flip, Augmentation::Shift, Augmentation::Jitter], &mut Rng::new(1, "a"));
        let b = view_of(&image, &g, &[Augmentation::Flip, Augmentation::Shift], &mut Rng::new(1, "b"));
        // Both views move pixels the same way: the plain view is the source pixel, the uncovered
        // border (2 columns, 1 row) is zero in both, and the jittered view differs only inside.
        let mut uncovered = 0;
        for p in 0..36 {
            match g.source(p % 6, p / 6, 6, 6) {
                Some(q) => assert_eq!(b[p], image.pixels[q], "pixel {p}"),
                None => {
                    assert_eq!((a[p], b[p]), (0.0, 0.0), "pixel {p}");
                    uncovered += 1;
                }
            }
        }
        assert_eq!(uncovered, 2 * 6 + 6 - 2, "two uncovered columns and one row");
        let bad = EmaConfig { teacher_view: vec![Augmentation::Flip], ..EmaConfig::default() };
        assert!(bad.problems().iter().any(|(k, m)| k == "teacher_view" && m.contains("same geometric augmentations")));
        assert!(EmaConfig::default().problems().is_empty());
        // The ramp rises from exp(−5) to the full weight.
        let e = EmaConfig::default();
        assert!((e.weight_at(0, 10) - (-5.0f32).exp()).abs() < 1e-6 && (e.weight_at(20, 10) - 1.0).abs() < 1e-6);
    }
}
