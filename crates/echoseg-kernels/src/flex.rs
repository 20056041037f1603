//! The kernels on burn-flex tensors: convolutions by [`crate::conv`], resizing by
//! [`crate::resize`], pooling by [`crate::pool`]; burn's own operations where they do not apply.

use burn::backend::TensorMetadata;
use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::tensor::{Bytes, DType, Shape};

use crate::conv::{Epilogue, Input};
use crate::im2col::Same;
use crate::norm::{self, Planes};
use crate::pool::{self, Pool};
use crate::resize::{self, Resize};
use crate::{KernelBackend, concat, conv, reference};

impl KernelBackend for Flex {
    fn same_conv2d(x: FlexTensor, weight: FlexTensor, dilation: usize) -> FlexTensor {
        let Some(g) = geometry(&x, &weight, dilation) else {
            return reference::same_conv2d::<Flex>(x, weight, dilation);
        };
        let y = conv::forward(&g, Input::Whole(values(&x).storage()), values(&weight).storage(), Epilogue::NONE);
        tensor(y, [g.batch, g.cout, g.height, g.width])
    }

    fn same_conv2d_bias_relu(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, dilation: usize) -> FlexTensor {
        let Some(g) = geometry(&x, &weight, dilation).filter(|g| bias_fits(&bias, g)) else {
            return reference::same_conv2d_bias_relu::<Flex>(x, weight, bias, dilation);
        };
        let bias = values(&bias);
        let epilogue = Epilogue { bias: Some(bias.storage()), relu: true };
        let y = conv::forward(&g, Input::Whole(values(&x).storage()), values(&weight).storage(), epilogue);
        tensor(y, [g.batch, g.cout, g.height, g.width])
    }

    fn same_conv2d_x_grad(x: FlexTensor, weight: FlexTensor, output_grad: FlexTensor, dilation: usize) -> FlexTensor {
        let Some(g) = geometry(&x, &weight, dilation) else {
            return reference::same_conv2d_x_grad::<Flex>(x, weight, output_grad, dilation);
        };
        let dx = conv::input_grad(&g, values(&weight).storage(), values(&output_grad).storage());
        tensor(dx, [g.batch, g.cin, g.height, g.width])
    }

    fn same_conv2d_weight_grad(x: FlexTensor, weight: FlexTensor, output_grad: FlexTensor, dilation: usize) -> FlexTensor {
        let Some(g) = geometry(&x, &weight, dilation) else {
            return reference::same_conv2d_weight_grad::<Flex>(x, weight, output_grad, dilation);
        };
        let dw = conv::weight_grad(&g, Input::Whole(values(&x).storage()), values(&output_grad).storage());
        tensor(dw, [g.cout, g.cin, g.kernel, g.kernel])
    }

    fn same_conv2d_pair(a: FlexTensor, b: FlexTensor, weight: FlexTensor, dilation: usize) -> FlexTensor {
        let Some((g, split)) = pair_geometry(&a, &b, &weight, dilation) else {
            return reference::same_conv2d_pair::<Flex>(a, b, weight, dilation);
        };
        let (a, b) = (values(&a), values(&b));
        let x = Input::Pair { first: a.storage(), second: b.storage(), split };
        let y = conv::forward(&g, x, values(&weight).storage(), Epilogue::NONE);
        tensor(y, [g.batch, g.cout, g.height, g.width])
    }

    fn same_conv2d_pair_bias_relu(a: FlexTensor, b: FlexTensor, weight: FlexTensor, bias: FlexTensor, dilation: usize) -> FlexTensor {
        let Some((g, split)) = pair_geometry(&a, &b, &weight, dilation).filter(|(g, _)| bias_fits(&bias, g)) else {
            return reference::same_conv2d_pair_bias_relu::<Flex>(a, b, weight, bias, dilation);
        };
        let (a, b, bias) = (values(&a), values(&b), values(&bias));
        let x = Input::Pair { first: a.storage(), second: b.storage(), split };
        let y = conv::forward(&g, x, values(&weight).storage(), Epilogue { bias: Some(bias.storage()), relu: true });
        tensor(y, [g.batch, g.cout, g.height, g.width])
    }

    fn same_conv2d_pair_x_grad(
        a: FlexTensor,
        b: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        dilation: usize,
    ) -> (FlexTensor, FlexTensor) {
        let Some((g, split)) = pair_geometry(&a, &b, &weight, dilation) else {
            return reference::same_conv2d_pair_x_grad::<Flex>(a, b, weight, output_grad, dilation);
        };
        let (da, db) = conv::input_grad_pair(&g, values(&weight).storage(), values(&output_grad).storage(), split);
        (tensor(da, [g.batch, split, g.height, g.width]), tensor(db, [g.batch, g.cin - split, g.height, g.width]))
    }

    fn same_conv2d_pair_weight_grad(
        a: FlexTensor,
        b: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        dilation: usize,
    ) -> FlexTensor {
        let Some((g, split)) = pair_geometry(&a, &b, &weight, dilation) else {
            return reference::same_conv2d_pair_weight_grad::<Flex>(a, b, weight, output_grad, dilation);
        };
        let (a, b) = (values(&a), values(&b));
        let x = Input::Pair { first: a.storage(), second: b.storage(), split };
        let dw = conv::weight_grad(&g, x, values(&output_grad).storage());
        tensor(dw, [g.cout, g.cin, g.kernel, g.kernel])
    }

    fn resize_bilinear(x: FlexTensor, size: [usize; 2]) -> FlexTensor {
        let Some(r) = resizing(&x, size) else { return reference::resize_bilinear::<Flex>(x, size) };
        let y = resize::forward(&r, values(&x).storage());
        let shape = x.shape();
        tensor(y, [shape[0], shape[1], size[0], size[1]])
    }

    fn resize_bilinear_grad(x: FlexTensor, output_grad: FlexTensor, size: [usize; 2]) -> FlexTensor {
        let Some(r) = resizing(&x, size) else { return reference::resize_bilinear_grad::<Flex>(x, output_grad, size) };
        let dx = resize::backward(&r, values(&output_grad).storage());
        let shape = x.shape();
        tensor(dx, [shape[0], shape[1], r.input[0], r.input[1]])
    }

    fn batch_norm_relu_train(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> (FlexTensor, FlexTensor, FlexTensor) {
        let Some(p) = planes(&x, &[&gamma, &beta]) else { return reference::batch_norm_relu_train::<Flex>(x, gamma, beta, epsilon) };
        let x_values = values(&x);
        let (mean, variance) = norm::statistics(&p, x_values.storage());
        let y = norm::forward(&p, x_values.storage(), (&mean, &variance), values(&gamma).storage(), values(&beta).storage(), epsilon);
        (tensor(y, shape4(&x)), tensor(mean, [p.channels]), tensor(variance, [p.channels]))
    }

    fn batch_norm_relu(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
    ) -> FlexTensor {
        let Some(p) = planes(&x, &[&gamma, &beta, &mean, &variance]) else {
            return reference::batch_norm_relu::<Flex>(x, gamma, beta, (mean, variance), epsilon);
        };
        let (mean, variance) = (values(&mean), values(&variance));
        let stats = (mean.storage(), variance.storage());
        let y = norm::forward(&p, values(&x).storage(), stats, values(&gamma).storage(), values(&beta).storage(), epsilon);
        tensor(y, shape4(&x))
    }

    fn batch_norm_relu_train_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        output_grad: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let fits = [&gamma, &beta, &mean, &variance];
        let Some(p) = planes(&x, &fits).filter(|_| output_grad.dtype() == DType::F32) else {
            let stats = (mean, variance);
            return reference::batch_norm_relu_train_backward::<Flex>(x, gamma, beta, stats, output_grad, epsilon);
        };
        let (mean, variance) = (values(&mean), values(&variance));
        let (dx, dgamma, dbeta) = norm::backward(
            &p,
            values(&x).storage(),
            values(&output_grad).storage(),
            (mean.storage(), variance.storage()),
            values(&gamma).storage(),
            values(&beta).storage(),
            epsilon,
        );
        (tensor(dx, shape4(&x)), tensor(dgamma, [p.channels]), tensor(dbeta, [p.channels]))
    }

    fn max_pool2(x: FlexTensor) -> FlexTensor {
        let Some(p) = pooling(&x) else { return reference::max_pool2::<Flex>(x) };
        let y = pool::forward(&p, values(&x).storage());
        let ([oh, ow], shape) = (p.output(), x.shape());
        tensor(y, [shape[0], shape[1], oh, ow])
    }

    fn max_pool2_grad(x: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let Some(p) = pooling(&x) else { return reference::max_pool2_grad::<Flex>(x, output_grad) };
        let dx = pool::backward(&p, values(&x).storage(), values(&output_grad).storage());
        tensor(dx, shape4(&x))
    }

    fn concat_channels(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        let (sa, sb) = (a.shape(), b.shape());
        let fits = a.dtype() == DType::F32 && b.dtype() == DType::F32 && sa.num_dims() == 4 && sb.num_dims() == 4;
        if !fits || sa[0] != sb[0] || sa[2..] != sb[2..] {
            return reference::concat_channels::<Flex>(a, b);
        }
        let pixels = sa[2] * sa[3];
        let y = concat::join(values(&a).storage(), values(&b).storage(), sa[0], [sa[1] * pixels, sb[1] * pixels]);
        tensor(y, [sa[0], sa[1] + sb[1], sa[2], sa[3]])
    }

    fn split_channels(x: FlexTensor, first: usize) -> (FlexTensor, FlexTensor) {
        let shape = x.shape();
        if x.dtype() != DType::F32 || shape.num_dims() != 4 || first > shape[1] {
            return reference::split_channels::<Flex>(x, first);
        }
        let (pixels, rest) = (shape[2] * shape[3], shape[1] - first);
        let (a, b) = concat::split(values(&x).storage(), shape[0], [first * pixels, rest * pixels]);
        (tensor(a, [shape[0], first, shape[2], shape[3]]), tensor(b, [shape[0], rest, shape[2], shape[3]]))
    }
}

/// Whether `bias` is one f32 per output channel of `g`, as the folded block's epilogue reads it.
fn bias_fits(bias: &FlexTensor, g: &Same) -> bool {
    bias.dtype() == DType::F32 && bias.shape().num_dims() == 1 && bias.shape()[0] == g.cout
}

/// The convolution's geometry, or `None` where the kernels here do not apply.
fn geometry(x: &FlexTensor, weight: &FlexTensor, dilation: usize) -> Option<Same> {
    let xs = x.shape();
    same(x.dtype(), [xs[0], xs[1], xs[2], xs[3]], weight, dilation)
}

/// The geometry of the convolution of `a` and `b` concatenated along channels, and the channels
/// of `a`; `None` where the kernels here do not apply (burn's concatenation then runs first).
fn pair_geometry(a: &FlexTensor, b: &FlexTensor, weight: &FlexTensor, dilation: usize) -> Option<(Same, usize)> {
    let (sa, sb) = (a.shape(), b.shape());
    let four = sa.num_dims() == 4 && sb.num_dims() == 4;
    // each image has channels in both inputs: an empty one is burn's concatenation to handle
    let side_by_side = four && a.dtype() == b.dtype() && sa[0] == sb[0] && sa[2] == sb[2] && sa[3] == sb[3];
    if !side_by_side || sa[1] == 0 || sb[1] == 0 {
        return None;
    }
    same(a.dtype(), [sa[0], sa[1] + sb[1], sa[2], sa[3]], weight, dilation).map(|g| (g, sa[1]))
}

/// The geometry of `x` [batch, cin, h, w] of `dtype` convolved with `weight`, or `None` where the
/// kernels here do not apply.
fn same(dtype: DType, xs: [usize; 4], weight: &FlexTensor, dilation: usize) -> Option<Same> {
    let ws = weight.shape();
    let f32s = dtype == DType::F32 && weight.dtype() == DType::F32;
    let square_odd = ws[2] == ws[3] && ws[2] % 2 == 1;
    // an empty batch, image or channel set is burn's to handle (nothing to split into images)
    let non_empty = xs.iter().chain(ws.iter()).all(|&d| d > 0);
    (f32s && square_odd && non_empty && xs[1] == ws[1] && dilation >= 1).then(|| Same {
        batch: xs[0],
        cin: xs[1],
        cout: ws[0],
        height: xs[2],
        width: xs[3],
        kernel: ws[2],
        dilation,
    })
}

/// The resizing's size, or `None` where the kernels here do not apply.
fn resizing(x: &FlexTensor, size: [usize; 2]) -> Option<Resize> {
    let shape = x.shape();
    let sized = shape[2] > 0 && shape[3] > 0 && size[0] > 0 && size[1] > 0;
    (x.dtype() == DType::F32 && sized).then(|| Resize { planes: shape[0] * shape[1], input: [shape[2], shape[3]], output: size })
}

/// The pooling's size, or `None` where the kernels here do not apply.
fn pooling(x: &FlexTensor) -> Option<Pool> {
    let shape = x.shape();
    (x.dtype() == DType::F32).then(|| Pool { planes: shape[0] * shape[1], height: shape[2], width: shape[3] })
}

/// The normalisation's shape, or `None` where the kernels here do not apply: `x` and every
/// per-channel tensor (scale, shift, statistics) must be f32, the latter one value per channel.
fn planes(x: &FlexTensor, per_channel: &[&FlexTensor]) -> Option<Planes> {
    let shape = x.shape();
    let fit = per_channel.iter().all(|t| t.dtype() == DType::F32 && t.shape().num_dims() == 1 && t.shape()[0] == shape[1]);
    let non_empty = shape.iter().all(|&d| d > 0);
    (x.dtype() == DType::F32 && shape.num_dims() == 4 && fit && non_empty).then(|| Planes {
        batch: shape[0],
        channels: shape[1],
        pixels: shape[2] * shape[3],
    })
}

fn shape4(x: &FlexTensor) -> [usize; 4] {
    let shape = x.shape();
    [shape[0], shape[1], shape[2], shape[3]]
}

/// The tensor with its values in one contiguous buffer (a copy only when it is a view).
fn values(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(Shape::from(shape.to_vec())), DType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// burn's own operations are what the GPU runs for the concatenation and its split.
    #[test]
    fn the_split_is_the_inverse_of_the_concatenation_in_burns_operations_and_here() {
        let (a, b) = ((0..2 * 3 * 4).map(|v| v as f32).collect::<Vec<_>>(), (0..2 * 5 * 4).map(|v| -(v as f32)).collect::<Vec<_>>());
        let (ta, tb) = (tensor(a.clone(), [2, 3, 2, 2]), tensor(b.clone(), [2, 5, 2, 2]));
        let ours = <Flex as KernelBackend>::concat_channels(ta.clone(), tb.clone());
        let burns = reference::concat_channels::<Flex>(ta, tb);
        let read = |t: &FlexTensor| values(t).storage().to_vec();
        assert_eq!(read(&ours), read(&burns));
        assert_eq!(read(&ours)[..12], a[..12], "the first image's first input, then its second");
        for (da, db) in [<Flex as KernelBackend>::split_channels(ours.clone(), 3), reference::split_channels::<Flex>(burns, 3)] {
            assert_eq!((read(&da), read(&db)), (a.clone(), b.clone()));
            assert_eq!((da.shape()[1], db.shape()[1]), (3, 5));
        }
    }
}
