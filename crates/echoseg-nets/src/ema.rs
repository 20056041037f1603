//! Exponential moving averages of weights: the mean teacher's teacher and BYOL's target network.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

use crate::arch::{Network, NetworkSpec};

/// An independent copy of `network` in inference mode on `device`: its own parameters and
/// BatchNorm statistics (a clone would share the statistics with the original).
pub fn detached_copy(network: &Network, spec: &NetworkSpec, device: &Device) -> Network {
    Network::new(spec, device).load_record(network.valid().into_record()).valid()
}

/// One step of the moving average: every float tensor of `teacher` (weights and BatchNorm
/// running statistics) becomes `decay · teacher + (1 − decay) · student`, paired in module order.
/// Any module works: the BYOL target averages a network with its projector.
pub fn ema_update<M: Module>(teacher: M, student: &M, decay: f64) -> M {
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let n = t.dims().iter().product::<usize>();
            self.0.push(t.reshape([n]));
        }
    }
    struct Blend {
        student: std::vec::IntoIter<Tensor<1>>,
        decay: f64,
    }
    impl ModuleMapper for Blend {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(s) = self.student.next() else { return param };
            let decay = self.decay;
            param.map(|t| {
                let dims = t.dims();
                t * decay + s.reshape(dims) * (1.0 - decay)
            })
        }
    }
    let mut collect = Collect(Vec::new());
    student.valid().visit(&mut collect);
    teacher.map(&mut Blend { student: collect.0.into_iter(), decay })
}
