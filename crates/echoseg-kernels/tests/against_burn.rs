//! Every "same" convolution the architectures use, against burn-flex's own operation: outputs and
//! both gradients within 1e-4 relative, and identical bits for any thread count.

mod common;

use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use echoseg_kernels::same_conv2d;

/// (batch, in, out, side, kernel, dilation): the unet's, fcn's, dilated's, bnonly's and heads'.
/// Forward: direct (vectors of pixels) or, for 1×1, one product. Weight gradient: im2col, direct
/// (wide rows, few outputs: 130, 64, 72, 96 and 40 px) or the shifted products (the last case).
const CASES: [(usize, usize, usize, usize, usize, usize); 15] = [
    (2, 3, 12, 17, 3, 1),
    (3, 24, 12, 9, 3, 1),
    (2, 8, 8, 12, 3, 2),
    (2, 8, 8, 12, 3, 4),
    (1, 5, 7, 6, 3, 4), // dilation beyond the image: taps read only padding
    (2, 12, 3, 10, 1, 1),
    (2, 36, 16, 8, 1, 1),
    (1, 1, 1, 5, 3, 1),
    (2, 4, 6, 13, 5, 3),
    (1, 9, 4, 130, 3, 2), // im2col in two bands of rows
    (2, 16, 8, 64, 3, 1),
    (1, 32, 4, 72, 3, 2),
    (1, 64, 3, 96, 3, 1), // the padded band in three bands of rows
    (1, 3, 5, 40, 5, 1),  // a 5×5 kernel's columns three and then one at a time
    (1, 16, 24, 64, 3, 1),
];

/// A fixed pseudo-random pattern in [-1, 1), so both paths see the same numbers.
fn seeded(shape: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f32 / 500.0) - 1.0).collect();
    Tensor::<4>::from_data(TensorData::new(values, shape), device)
}

struct Results {
    y: TensorData,
    dx: TensorData,
    dw: TensorData,
}

fn run(case: (usize, usize, usize, usize, usize, usize), ours: bool) -> Results {
    echoseg_kernels::fill_new_memory_with_garbage();
    let (batch, cin, cout, side, kernel, dilation) = case;
    let device = Device::flex().autodiff();
    let seeded = |shape, seed| seeded(shape, seed, &device);
    let x = seeded([batch, cin, side, side], 1).require_grad();
    let w = seeded([cout, cin, kernel, kernel], 2).require_grad();
    let r = seeded([batch, cout, side, side], 3);
    let y = if ours {
        same_conv2d(x.clone(), w.clone(), dilation)
    } else {
        let pad = dilation * (kernel - 1) / 2;
        conv2d(x.clone(), w.clone(), None, ConvOptions::new([1, 1], [pad, pad], [dilation, dilation], 1))
    };
    let grads = (y.clone() * r).sum().backward();
    let grad = |t: &Tensor<4>| t.grad(&grads).map(|g| g.into_data()).unwrap_or_else(|| panic!("no gradient"));
    Results { y: y.into_data(), dx: grad(&x), dw: grad(&w) }
}

fn assert_close(ours: &TensorData, burn: &TensorData, what: &str) {
    let (a, b) = (ours.try_to_vec::<f32>().unwrap_or_default(), burn.try_to_vec::<f32>().unwrap_or_default());
    assert_eq!(a.len(), b.len(), "{what}: sizes differ");
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1.0);
    let worst = a.iter().zip(&b).map(|(p, q)| (p - q).abs() / scale).fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "{what}: largest difference {worst} of the largest value");
}

#[test]
fn outputs_and_gradients_equal_burns_convolution() {
    for case in CASES {
        let (ours, burn) = (run(case, true), run(case, false));
        assert_close(&ours.y, &burn.y, &format!("{case:?} output"));
        assert_close(&ours.dx, &burn.dx, &format!("{case:?} input gradient"));
        assert_close(&ours.dw, &burn.dw, &format!("{case:?} weight gradient"));
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let in_pool = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap_or_else(|e| panic!("{e}"));
        pool.install(|| (CASES.map(|case| run(case, true)), RESIZES.map(|case| resize_run(case, true))))
    };
    let ((one, one_resized), (three, three_resized)) = (in_pool(1), in_pool(3));
    assert_eq!(one_resized, three_resized, "resizing");
    for ((a, b), case) in one.iter().zip(&three).zip(CASES) {
        assert_eq!(a.y, b.y, "{case:?} output");
        assert_eq!(a.dx, b.dx, "{case:?} input gradient");
        assert_eq!(a.dw, b.dw, "{case:?} weight gradient");
    }
}

#[test]
fn without_autodiff_the_forward_is_the_same_function() {
    let device = Device::flex();
    let x = Tensor::<4>::random([2, 6, 11, 11], Distribution::Normal(0.0, 1.0), &device);
    let w = Tensor::<4>::random([4, 6, 3, 3], Distribution::Normal(0.0, 1.0), &device);
    let ours = same_conv2d(x.clone(), w.clone(), 2).into_data();
    let burn = conv2d(x, w, None, ConvOptions::new([1, 1], [2, 2], [2, 2], 1)).into_data();
    assert_close(&ours, &burn, "inference forward");
}

/// (batch, channels, input h, input w, output h, output w): the up-sampling of the unet and the
/// dilated network at even and odd sizes, and the corner cases.
const RESIZES: [(usize, usize, usize, usize, usize, usize); 6] =
    [(2, 8, 6, 6, 12, 12), (3, 4, 5, 7, 11, 15), (1, 2, 24, 24, 48, 48), (2, 3, 1, 4, 3, 8), (1, 1, 4, 4, 4, 4), (2, 2, 9, 9, 4, 4)];

fn resize_run(case: (usize, usize, usize, usize, usize, usize), ours: bool) -> (TensorData, TensorData) {
    echoseg_kernels::fill_new_memory_with_garbage();
    let (batch, channels, ih, iw, oh, ow) = case;
    let device = Device::flex().autodiff();
    let seeded = |shape, seed| seeded(shape, seed, &device);
    let x = seeded([batch, channels, ih, iw], 4).require_grad();
    let r = seeded([batch, channels, oh, ow], 5);
    let y = if ours {
        echoseg_kernels::resize_bilinear(x.clone(), [oh, ow])
    } else {
        burn::tensor::module::interpolate(x.clone(), InterpolateOptions::new(InterpolateMode::Bilinear).with_output_size([oh, ow]))
    };
    let grads = (y.clone() * r).sum().backward();
    let dx = x.grad(&grads).map(|g| g.into_data()).unwrap_or_else(|| panic!("no gradient"));
    (y.into_data(), dx)
}

#[test]
fn bilinear_resizing_and_its_gradient_equal_burns_interpolate() {
    for case in RESIZES {
        let ((y, dx), (y_burn, dx_burn)) = (resize_run(case, true), resize_run(case, false));
        assert_close(&y, &y_burn, &format!("{case:?} output"));
        assert_close(&dx, &dx_burn, &format!("{case:?} input gradient"));
    }
}

/// (batch, channels of the first, channels of the second, h, w): the unet's and the dilated
/// network's decoders.
const CONCATS: [(usize, usize, usize, usize, usize); 3] = [(2, 8, 4, 6, 6), (3, 5, 7, 3, 9), (1, 16, 16, 12, 12)];

/// The concatenation and the gradients of both inputs, where each input is the output of an
/// operation (so both are tracked) and the loss weighs every output channel differently.
fn concat_run(case: (usize, usize, usize, usize, usize), ours: bool) -> (TensorData, TensorData, TensorData) {
    echoseg_kernels::fill_new_memory_with_garbage();
    let (batch, ca, cb, h, w) = case;
    let device = Device::flex().autodiff();
    let a = seeded([batch, ca, h, w], 6, &device).require_grad();
    let b = seeded([batch, cb, h, w], 7, &device).require_grad();
    let r = seeded([batch, ca + cb, h, w], 8, &device);
    let (sa, sb) = (a.clone() * 2.0, b.clone() - 1.0);
    let y = if ours { echoseg_kernels::concat_channels(sa, sb) } else { Tensor::cat(vec![sa, sb], 1) };
    let grads = (y.clone() * r).sum().backward();
    let grad = |t: &Tensor<4>| t.grad(&grads).map(|g| g.into_data()).unwrap_or_else(|| panic!("no gradient"));
    (y.into_data(), grad(&a), grad(&b))
}

#[test]
fn concatenation_and_its_gradients_equal_burns_cat_to_the_bit() {
    for case in CONCATS {
        let (ours, burn) = (concat_run(case, true), concat_run(case, false));
        assert_eq!(ours.0, burn.0, "{case:?} output");
        assert_eq!(ours.1, burn.1, "{case:?} first input's gradient");
        assert_eq!(ours.2, burn.2, "{case:?} second input's gradient");
    }
}

/// (batch, channels of a, of b, out, side, kernel, dilation), on AVX2: the direct forward with the
/// weight gradient by im2col, the direct weight gradient (16 outputs, 64 px), the channel path
/// (32 outputs), the shifted products (whose input is concatenated first), a 1×1 convolution
/// (concatenated forward, its input gradient cut after), and the dilated network's decoder.
const PAIRS: [(usize, usize, usize, usize, usize, usize, usize); 6] = [
    (2, 2, 3, 16, 11, 3, 1),
    (2, 32, 16, 16, 64, 3, 1),
    (2, 32, 32, 32, 16, 3, 1),
    (1, 8, 16, 24, 64, 3, 1),
    (2, 12, 24, 12, 9, 1, 1),
    (2, 8, 8, 8, 24, 3, 2),
];

/// The convolution of two inputs and the gradients of both inputs and the weight, read in place
/// (`ours`) or through the concatenation, each input the output of an operation (so both are
/// tracked).
fn pair_run(case: (usize, usize, usize, usize, usize, usize, usize), in_place: bool) -> [TensorData; 4] {
    echoseg_kernels::fill_new_memory_with_garbage();
    let (batch, ca, cb, cout, side, kernel, dilation) = case;
    let device = Device::flex().autodiff();
    let a = seeded([batch, ca, side, side], 9, &device).require_grad();
    let b = seeded([batch, cb, side, side], 10, &device).require_grad();
    let w = seeded([cout, ca + cb, kernel, kernel], 11, &device).require_grad();
    let r = seeded([batch, cout, side, side], 12, &device);
    let (sa, sb) = (a.clone() * 2.0, b.clone() - 1.0);
    let y = match in_place {
        true => echoseg_kernels::same_conv2d_pair(sa, sb, w.clone(), dilation),
        false => same_conv2d(echoseg_kernels::concat_channels(sa, sb), w.clone(), dilation),
    };
    let grads = (y.clone() * r).sum().backward();
    let grad = |t: &Tensor<4>| t.grad(&grads).map(|g| g.into_data()).unwrap_or_else(|| panic!("no gradient"));
    [y.into_data(), grad(&a), grad(&b), grad(&w)]
}

/// Only the first input tracked (the second a constant, the weight frozen): its gradient alone,
/// read in place or through the concatenation.
fn first_input_only(case: (usize, usize, usize, usize, usize, usize, usize), in_place: bool) -> TensorData {
    echoseg_kernels::fill_new_memory_with_garbage();
    let (batch, ca, cb, cout, side, kernel, dilation) = case;
    let device = Device::flex().autodiff();
    let a = seeded([batch, ca, side, side], 9, &device).require_grad();
    let (b, w) = (seeded([batch, cb, side, side], 10, &device), seeded([cout, ca + cb, kernel, kernel], 11, &device));
    let r = seeded([batch, cout, side, side], 12, &device);
    let y = match in_place {
        true => echoseg_kernels::same_conv2d_pair(a.clone() * 2.0, b, w, dilation),
        false => same_conv2d(echoseg_kernels::concat_channels(a.clone() * 2.0, b), w, dilation),
    };
    let grads = (y * r).sum().backward();
    a.grad(&grads).map(|g| g.into_data()).unwrap_or_else(|| panic!("no gradient"))
}

#[test]
fn a_convolution_of_two_inputs_read_in_place_equals_that_of_their_concatenation_to_the_bit() {
    for case in PAIRS {
        let (in_place, concatenated) = (pair_run(case, true), pair_run(case, false));
        for (what, (ours, theirs)) in ["output", "first input's gradient", "second input's gradient", "weight gradient"]
            .iter()
            .zip(in_place.iter().zip(&concatenated))
        {
            assert_eq!(ours, theirs, "{case:?} {what}");
        }
        assert_eq!(first_input_only(case, true), first_input_only(case, false), "{case:?} first input alone tracked");
    }
}

/// A folded decoder block (bias and ReLU applied as the output is written) of two inputs read in
/// place, against the same block on their concatenation.
#[test]
fn a_folded_block_of_two_inputs_read_in_place_equals_it_on_their_concatenation_to_the_bit() {
    echoseg_kernels::fill_new_memory_with_garbage();
    let device = Device::flex();
    for (batch, ca, cb, cout, side, kernel, dilation) in PAIRS {
        let a = seeded([batch, ca, side, side], 13, &device);
        let b = seeded([batch, cb, side, side], 14, &device);
        let pad = dilation * (kernel - 1) / 2;
        let mut layer = burn::nn::conv::Conv2dConfig::new([ca + cb, cout], [kernel, kernel])
            .with_padding(burn::nn::PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_dilation([dilation, dilation])
            .init(&device);
        layer.weight = burn::module::Param::from_tensor(seeded([cout, ca + cb, kernel, kernel], 15, &device));
        let in_place = echoseg_kernels::conv2d_relu_pair_forward(&layer, a.clone(), b.clone()).into_data();
        let concatenated = echoseg_kernels::conv2d_relu_forward(&layer, echoseg_kernels::concat_channels(a, b)).into_data();
        assert_eq!(in_place, concatenated, "{:?}", (batch, ca, cb, cout, side, kernel, dilation));
    }
}

/// (batch, channels, h, w): even and odd sides (the odd last row and column are dropped), rows of
/// whole vectors of windows and with a rest (19 windows), one row (no output) and one column (no
/// output, every input gradient 0).
const POOLS: [(usize, usize, usize, usize); 6] = [(2, 8, 12, 12), (3, 4, 7, 9), (1, 2, 48, 48), (1, 3, 6, 38), (2, 3, 1, 5), (1, 2, 6, 1)];

fn pool_run(case: (usize, usize, usize, usize), ours: bool) -> (TensorData, TensorData) {
    echoseg_kernels::fill_new_memory_with_garbage();
    let (batch, channels, h, w) = case;
    let device = Device::flex().autodiff();
    let n = batch * channels * h * w;
    // after a ReLU: a third of the values are 0, so ties are common and their rule matters
    let values: Vec<f32> = (0..n).map(|i| ((((i as u64 * 2654435761) % 1000) as f32 / 500.0) - 0.33).max(0.0)).collect();
    let x = Tensor::<4>::from_data(TensorData::new(values, [batch, channels, h, w]), &device).require_grad();
    let pool = burn::nn::pool::MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    let y = if ours { echoseg_kernels::max_pool2d_forward(&pool, x.clone()) } else { pool.forward(x.clone()) };
    let [_, _, oh, ow] = y.dims();
    let r: Vec<f32> = (0..batch * channels * oh * ow).map(|i| i as f32 * 0.25 - 3.0).collect();
    let r = Tensor::<4>::from_data(TensorData::new(r, [batch, channels, oh, ow]), &device);
    let grads = (y.clone() * r).sum().backward();
    let dx = x.grad(&grads).map(|g| g.into_data()).unwrap_or_else(|| panic!("no gradient"));
    (y.into_data(), dx)
}

#[test]
fn max_pooling_and_its_gradient_equal_burns_to_the_bit() {
    for case in POOLS {
        let ((y, dx), (y_burn, dx_burn)) = (pool_run(case, true), pool_run(case, false));
        assert_eq!(y, y_burn, "{case:?} output");
        assert_eq!(dx, dx_burn, "{case:?} input gradient");
    }
}

#[test]
fn burn_layers_applied_through_the_kernels_equal_their_own_forward() {
    echoseg_kernels::fill_new_memory_with_garbage();
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    let device = Device::flex();
    let x = seeded([2, 3, 10, 10], 6, &device);
    let layers = [
        Conv2dConfig::new([3, 5], [1, 1]).init(&device), // a head: 1×1 with bias
        Conv2dConfig::new([3, 4], [3, 3]).with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2)).with_dilation([2, 2]).init(&device),
        Conv2dConfig::new([3, 4], [3, 3]).with_stride([2, 2]).init(&device), // not a same convolution: the layer's own
    ];
    for (i, layer) in layers.iter().enumerate() {
        let ours = echoseg_kernels::conv2d_forward(layer, x.clone()).into_data();
        assert_close(&ours, &layer.forward(x.clone()).into_data(), &format!("layer {i}"));
        let with_relu = echoseg_kernels::conv2d_relu_forward(layer, x.clone()).into_data();
        let burn = burn::tensor::activation::relu(layer.forward(x.clone())).into_data();
        assert_close(&with_relu, &burn, &format!("layer {i} with ReLU"));
    }
}

#[test]
fn a_folded_block_differentiates_through_the_fused_bias_and_relu() {
    echoseg_kernels::fill_new_memory_with_garbage();
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    let device = Device::flex().autodiff();
    let layer = Conv2dConfig::new([3, 4], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&device);
    let x = seeded([2, 3, 9, 9], 9, &device).require_grad();
    let grad_of = |y: Tensor<4>| {
        let grads = y.sum().backward();
        x.grad(&grads).map(|g| g.into_data()).unwrap_or_else(|| panic!("no gradient"))
    };
    let ours = grad_of(echoseg_kernels::conv2d_relu_forward(&layer, x.clone()));
    let burn = grad_of(burn::tensor::activation::relu(layer.forward(x.clone())));
    assert_close(&ours, &burn, "input gradient through bias and ReLU");
}

/// (batch, channels, h, w): the blocks' activations at a few sizes, one image alone, one pixel.
const NORMS: [(usize, usize, usize, usize); 4] = [(3, 8, 12, 12), (1, 5, 7, 9), (4, 3, 1, 1), (2, 16, 24, 24)];

struct Normed {
    y: TensorData,
    dx: TensorData,
    dgamma: TensorData,
    dbeta: TensorData,
    running: (TensorData, TensorData),
}

fn norm_run(case: (usize, usize, usize, usize), ours: bool) -> Normed {
    echoseg_kernels::fill_new_memory_with_garbage();
    let (batch, channels, h, w) = case;
    let device = Device::flex().autodiff();
    let norm = common::ramped_norm(channels, &device);
    let x = (seeded([batch, channels, h, w], 7, &device) * 2.0 + 0.5).require_grad();
    let r = seeded([batch, channels, h, w], 8, &device);
    let y = if ours {
        echoseg_kernels::batch_norm_relu_forward(&norm, x.clone())
    } else {
        burn::tensor::activation::relu(norm.forward(x.clone()))
    };
    let grads = (y.clone() * r).sum().backward();
    let grad1 = |t: Tensor<1>| t.grad(&grads).map(|g| g.into_data()).unwrap_or_else(|| panic!("no gradient"));
    let dx = x.grad(&grads).map(|g| g.into_data()).unwrap_or_else(|| panic!("no gradient"));
    Normed {
        y: y.into_data(),
        dx,
        dgamma: grad1(norm.gamma.val()),
        dbeta: grad1(norm.beta.val()),
        running: (norm.running_mean.value().into_data(), norm.running_var.value().into_data()),
    }
}

#[test]
fn batch_norm_and_relu_equal_burns_layers_with_their_gradients_and_running_statistics() {
    for case in NORMS {
        let (ours, burn) = (norm_run(case, true), norm_run(case, false));
        assert_close(&ours.y, &burn.y, &format!("{case:?} output"));
        assert_close(&ours.dx, &burn.dx, &format!("{case:?} input gradient"));
        assert_close(&ours.dgamma, &burn.dgamma, &format!("{case:?} scale gradient"));
        assert_close(&ours.dbeta, &burn.dbeta, &format!("{case:?} shift gradient"));
        assert_close(&ours.running.0, &burn.running.0, &format!("{case:?} running mean"));
        assert_close(&ours.running.1, &burn.running.1, &format!("{case:?} running variance"));
        // a layer that ReLU cuts nowhere or everywhere would not test the mask
        let y = ours.y.try_to_vec::<f32>().unwrap_or_default();
        let zeros = y.iter().filter(|&&v| v == 0.0).count();
        assert!(zeros > 0 && zeros < y.len(), "{case:?}: ReLU cut {zeros} of {}", y.len());
    }
}

#[test]
fn batch_norm_and_relu_in_inference_equal_burns_layers() {
    use burn::module::Param;
    let device = Device::flex();
    for (batch, channels, h, w) in NORMS {
        let mut norm = burn::nn::BatchNormConfig::new(channels).init(&device);
        let per_channel = |f: fn(f32) -> f32| {
            let values: Vec<f32> = (0..channels).map(|c| f(c as f32)).collect();
            Tensor::<1>::from_data(TensorData::new(values, [channels]), &device)
        };
        norm.gamma = Param::from_tensor(per_channel(|c| (c * 0.7).cos() * 1.3));
        norm.beta = Param::from_tensor(per_channel(|c| (c * 0.4).sin() * 0.6));
        norm.running_mean = burn::module::RunningState::new(per_channel(|c| c * 0.1 - 0.2));
        norm.running_var = burn::module::RunningState::new(per_channel(|c| 0.5 + c * 0.05));
        let x = seeded([batch, channels, h, w], 10, &device) * 2.0;
        let ours = echoseg_kernels::batch_norm_relu_forward(&norm, x.clone()).into_data();
        let burn = burn::tensor::activation::relu(norm.forward(x)).into_data();
        assert_close(&ours, &burn, &format!("{:?} inference", (batch, channels, h, w)));
    }
}

#[test]
fn batch_norm_and_relu_do_not_depend_on_the_thread_count() {
    let in_pool = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap_or_else(|e| panic!("{e}"));
        pool.install(|| NORMS.map(|case| norm_run(case, true)))
    };
    let (one, three) = (in_pool(1), in_pool(3));
    for ((a, b), case) in one.iter().zip(&three).zip(NORMS) {
        assert_eq!((&a.y, &a.dx, &a.dgamma, &a.dbeta), (&b.y, &b.dx, &b.dgamma, &b.dbeta), "{case:?}");
    }
}
