//! The backward passes of the kernels: the gradients the inner backend computes, so a training
//! step never leaves the kernels of this crate.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata};

use crate::KernelBackend;

#[derive(Debug)]
struct SameConv;

impl<B: Backend + KernelBackend> Backward<B, 2> for SameConv {
    type State = (NodeId, NodeId, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, dilation) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
        if let Some(node) = node_weight {
            let dw = B::same_conv2d_weight_grad(x.clone(), weight.clone(), grad.clone(), dilation);
            grads.register::<B>(node.id, dw);
        }
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::same_conv2d_x_grad(x, weight, grad, dilation));
        }
    }
}

/// The backward of a convolution of two inputs concatenated along channels.
#[derive(Debug)]
struct SameConvPair;

impl<B: Backend + KernelBackend> Backward<B, 3> for SameConvPair {
    /// The checkpoints of the two inputs and the weight, and the dilation.
    type State = ([NodeId; 3], usize);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_a, node_b, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (nodes, dilation) = ops.state;
        let [a, b, weight] = nodes.map(|node| checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(node));
        if let Some(node) = node_weight {
            let dw = B::same_conv2d_pair_weight_grad(a.clone(), b.clone(), weight.clone(), grad.clone(), dilation);
            grads.register::<B>(node.id, dw);
        }
        if node_a.is_some() || node_b.is_some() {
            let (da, db) = B::same_conv2d_pair_x_grad(a, b, weight, grad, dilation);
            for (node, grad) in [(node_a, da), (node_b, db)] {
                if let Some(node) = node {
                    grads.register::<B>(node.id, grad);
                }
            }
        }
    }
}

impl<B: Backend + KernelBackend, C: CheckpointStrategy> KernelBackend for Autodiff<B, C> {
    fn same_conv2d_pair(a: FloatTensor<Self>, b: FloatTensor<Self>, weight: FloatTensor<Self>, dilation: usize) -> FloatTensor<Self> {
        match SameConvPair.prepare::<C>([a.node(), b.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let nodes = [prep.checkpoint(&a), prep.checkpoint(&b), prep.checkpoint(&weight)];
                let out = B::same_conv2d_pair(a.into_primitive(), b.into_primitive(), weight.into_primitive(), dilation);
                prep.finish((nodes, dilation), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::same_conv2d_pair(a.into_primitive(), b.into_primitive(), weight.into_primitive(), dilation))
            }
        }
    }

    fn same_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, dilation: usize) -> FloatTensor<Self> {
        match SameConv.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out = B::same_conv2d(x.into_primitive(), weight.into_primitive(), dilation);
                prep.finish((x_state, weight_state, dilation), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::same_conv2d(x.into_primitive(), weight.into_primitive(), dilation)),
        }
    }

    fn resize_bilinear(x: FloatTensor<Self>, size: [usize; 2]) -> FloatTensor<Self> {
        match ResizeBilinear.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                prep.finish((x_state, size), B::resize_bilinear(x.into_primitive(), size))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::resize_bilinear(x.into_primitive(), size)),
        }
    }

    fn batch_norm_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let constant = <FloatTensor<Self>>::new;
        match BatchNormRelu.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let nodes = [prep.checkpoint(&x), prep.checkpoint(&gamma), prep.checkpoint(&beta)];
                let (y, mean, variance) =
                    B::batch_norm_relu_train(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), epsilon);
                let y = prep.finish((nodes, mean.clone(), variance.clone(), epsilon), y);
                (y, constant(mean), constant(variance))
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, variance) =
                    B::batch_norm_relu_train(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), epsilon);
                (prep.finish(y), constant(mean), constant(variance))
            }
        }
    }

    fn concat_channels(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        let first = a.primitive().shape()[1];
        match ConcatChannels.prepare::<C>([a.node(), b.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(first, B::concat_channels(a.into_primitive(), b.into_primitive())),
            OpsKind::UnTracked(prep) => prep.finish(B::concat_channels(a.into_primitive(), b.into_primitive())),
        }
    }

    fn max_pool2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match MaxPool2.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                prep.finish(x_state, B::max_pool2(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::max_pool2(x.into_primitive())),
        }
    }
}

#[derive(Debug)]
struct ConcatChannels;

impl<B: Backend + KernelBackend> Backward<B, 2> for ConcatChannels {
    /// Channels of the first input.
    type State = usize;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_a, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (da, db) = B::split_channels(grad, ops.state);
        for (node, grad) in [(node_a, da), (node_b, db)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

#[derive(Debug)]
struct MaxPool2;

impl<B: Backend + KernelBackend> Backward<B, 1> for MaxPool2 {
    type State = NodeId;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(ops.state);
        unary::<B, _>(ops.parents, ops.node, grads, |grad| B::max_pool2_grad(x, grad));
    }
}

#[derive(Debug)]
struct ResizeBilinear;

impl<B: Backend + KernelBackend> Backward<B, 1> for ResizeBilinear {
    type State = (NodeId, [usize; 2]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let (x_state, size) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        unary::<B, _>(ops.parents, ops.node, grads, |grad| B::resize_bilinear_grad(x, grad, size));
    }
}

#[derive(Debug)]
struct BatchNormRelu;

impl<B: Backend + KernelBackend> Backward<B, 3> for BatchNormRelu {
    /// The checkpoints of x, gamma and beta, the batch's statistics as the forward computed them,
    /// and epsilon.
    type State = ([NodeId; 3], B::FloatTensorPrimitive, B::FloatTensorPrimitive, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (nodes, mean, variance, epsilon) = ops.state;
        let [x, gamma, beta] = nodes.map(|node| checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(node));
        let (dx, dgamma, dbeta) = B::batch_norm_relu_train_backward(x, gamma, beta, mean, variance, grad, epsilon);
        for (node, grad) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}
