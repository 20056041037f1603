//! Seeded initialisation: a network's first weights depend only on its spec, the seed and the
//! device, however many trainings run at once.

use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

use crate::arch::{Network, NetworkSpec};

// Parameter initialisation draws from the backend's global generator; holding this lock while
// seeding and initialising keeps concurrent trainings from interleaving their draws.
static INIT_LOCK: Mutex<()> = Mutex::new(());

struct Materialise;

impl ModuleVisitor for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// A network whose initial weights depend only on `spec`, `seed` and the device.
pub fn init_network(spec: &NetworkSpec, seed: u64, device: &Device) -> Network {
    seeded(seed, device, || Network::new(spec, device))
}

/// Builds modules with `make` from the device's generator seeded with `seed`, drawing every
/// parameter before another training may draw, so their values depend only on the seed.
pub(crate) fn seeded<M: Module>(seed: u64, device: &Device, make: impl FnOnce() -> M) -> M {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    let modules = make();
    // Parameters are lazy: draw them now, in module order, while the seed is ours.
    modules.visit(&mut Materialise);
    modules
}
