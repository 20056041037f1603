//! The kernels against PyTorch's own numbers, at the reference U-Net's shapes (batch 16, 64 × 64,
//! width 16, depth 3), outputs and gradients: every convolution of that network (and the dilated
//! network's at dilations 2 and 4; the decoders' also with their two inputs read in place), its
//! BatchNorm + ReLU, 2×2 max-pooling and bilinear up-sampling. PyTorch never runs here:
//! `bench/torch_kernels_reference.py` stored its numbers (sums, largest magnitude and 64 values at
//! fixed positions per tensor) in `tests/torch_reference.json`.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use serde_json::Value;

const REFERENCE: &str = include_str!("torch_reference.json");

/// The script's pattern: ((i · 2654435761 + seed · 97) mod 10007) / 5003.5 − 1 at flat index i.
fn pattern(shape: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n as u64).map(|i| (((i * 2654435761 + seed * 97) % 10007) as f64 / 5003.5 - 1.0) as f32).collect();
    Tensor::<4>::from_data(TensorData::new(values, shape), device)
}

fn number(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("torch_reference.json: no number `{key}`"))
}

fn size(v: &Value, key: &str) -> usize {
    number(v, key) as usize
}

/// Compares a tensor with PyTorch's summary of it: every stored value within `1e-4` of the
/// largest magnitude, the sum within `1e-5` of the sum of magnitudes (float32 sums in another
/// order), and the sum of magnitudes and the largest magnitude within `1e-5` relative.
fn assert_matches(ours: Vec<f32>, torch: &Value, what: &str) {
    assert_eq!(ours.len(), size(torch, "len"), "{what}: sizes differ");
    let (max_abs, abs_sum) = (number(torch, "max_abs"), number(torch, "abs_sum"));
    let scale = max_abs.max(1e-6);
    for sample in torch["samples"].as_array().into_iter().flatten() {
        let (at, value) = (sample[0].as_u64().unwrap_or(0) as usize, sample[1].as_f64().unwrap_or(f64::NAN));
        let gap = (f64::from(ours[at]) - value).abs() / scale;
        assert!(gap <= 1e-4, "{what}[{at}]: ours {} against PyTorch's {value}", ours[at]);
    }
    let (sum, ours_abs_sum) = ours.iter().fold((0.0, 0.0), |(s, a), &v| (s + f64::from(v), a + f64::from(v).abs()));
    let ours_max = ours.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    assert!((sum - number(torch, "sum")).abs() <= 1e-5 * abs_sum.max(1e-6), "{what}: sum {sum} against {}", number(torch, "sum"));
    assert!((ours_abs_sum - abs_sum).abs() <= 1e-5 * abs_sum.max(1e-6), "{what}: sum of magnitudes {ours_abs_sum} against {abs_sum}");
    assert!((ours_max - max_abs).abs() <= 1e-5 * scale, "{what}: largest magnitude {ours_max} against {max_abs}");
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap_or_else(|e| panic!("{e:?}"))
}

fn grad<const D: usize>(t: &Tensor<D>, grads: &burn::tensor::Gradients) -> Vec<f32> {
    values(t.grad(grads).unwrap_or_else(|| panic!("no gradient")))
}

fn reference() -> (Value, usize) {
    let reference: Value = serde_json::from_str(REFERENCE).unwrap_or_else(|e| panic!("torch_reference.json: {e}"));
    let batch = size(&reference, "batch");
    (reference, batch)
}

fn cases<'a>(reference: &'a Value, key: &str) -> &'a [Value] {
    let cases = reference[key].as_array().map(Vec::as_slice).unwrap_or_default();
    assert!(!cases.is_empty(), "torch_reference.json: no `{key}`");
    cases
}

#[test]
fn every_reference_convolution_and_its_gradients_equal_pytorchs() {
    echoseg_kernels::fill_new_memory_with_garbage();
    let (reference, batch) = reference();
    let device = Device::flex().autodiff();
    for case in cases(&reference, "convs") {
        let [cin, cout, side, kernel, dilation] = ["cin", "cout", "side", "kernel", "dilation"].map(|k| size(case, k));
        let what = format!("{cin}→{cout} at {side} px, {kernel}×{kernel} dilation {dilation}");
        let x = pattern([batch, cin, side, side], 1, &device).require_grad();
        let w = (pattern([cout, cin, kernel, kernel], 2, &device) * 0.2).require_grad();
        let r = pattern([batch, cout, side, side], 3, &device);
        let y = echoseg_kernels::same_conv2d(x.clone(), w.clone(), dilation);
        let grads = (y.clone() * r.clone()).sum().backward();
        assert_matches(grad(&x, &grads), &case["dx"], &format!("{what}: input gradient"));
        assert_matches(grad(&w, &grads), &case["dw"], &format!("{what}: weight gradient"));
        assert_matches(values(y), &case["y"], &format!("{what}: output"));
        // the decoders' inputs (96 = 64 up-sampled + 32 skip, 48 = 32 + 16) as two tensors read
        // in place: the same numbers
        if cin % 3 == 0 {
            let split = 2 * cin / 3;
            let part = |channels: std::ops::Range<usize>| x.clone().slice([0..batch, channels, 0..side, 0..side]);
            let y = echoseg_kernels::same_conv2d_pair(part(0..split), part(split..cin), w.clone(), dilation);
            let grads = (y.clone() * r).sum().backward();
            let what = format!("{what} as {split} + {} channels read in place", cin - split);
            assert_matches(grad(&x, &grads), &case["dx"], &format!("{what}: input gradient"));
            assert_matches(grad(&w, &grads), &case["dw"], &format!("{what}: weight gradient"));
            assert_matches(values(y), &case["y"], &format!("{what}: output"));
        }
    }
}

#[test]
fn batch_norm_and_relu_with_their_gradients_equal_pytorchs() {
    echoseg_kernels::fill_new_memory_with_garbage();
    let (reference, batch) = reference();
    let device = Device::flex().autodiff();
    for case in cases(&reference, "norms") {
        let [channels, side] = ["channels", "side"].map(|k| size(case, k));
        let norm = common::ramped_norm(channels, &device);
        let x = (pattern([batch, channels, side, side], 7, &device) * 2.0 + 0.5).require_grad();
        let r = pattern([batch, channels, side, side], 8, &device);
        let y = echoseg_kernels::batch_norm_relu_forward(&norm, x.clone());
        let grads = (y.clone() * r).sum().backward();
        let what = format!("{channels} channels at {side} px");
        assert_matches(grad(&x, &grads), &case["dx"], &format!("{what}: input gradient"));
        assert_matches(grad(&norm.gamma.val(), &grads), &case["dgamma"], &format!("{what}: scale gradient"));
        assert_matches(grad(&norm.beta.val(), &grads), &case["dbeta"], &format!("{what}: shift gradient"));
        assert_matches(values(y), &case["y"], &format!("{what}: output"));
    }
}

#[test]
fn pooling_and_upsampling_with_their_gradients_equal_pytorchs() {
    echoseg_kernels::fill_new_memory_with_garbage();
    let (reference, batch) = reference();
    let device = Device::flex().autodiff();
    let pool = burn::nn::pool::MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    for case in cases(&reference, "pools") {
        let [channels, side] = ["channels", "side"].map(|k| size(case, k));
        let x = (pattern([batch, channels, side, side], 4, &device) - 0.33).clamp_min(0.0).require_grad();
        let y = echoseg_kernels::max_pool2d_forward(&pool, x.clone());
        let r = pattern(y.dims(), 5, &device);
        let grads = (y.clone() * r).sum().backward();
        let what = format!("max-pooling {channels} channels at {side} px");
        assert_matches(grad(&x, &grads), &case["dx"], &format!("{what}: input gradient"));
        assert_matches(values(y), &case["y"], &format!("{what}: output"));
    }
    for case in cases(&reference, "resizes") {
        let [channels, side, out] = ["channels", "side", "out"].map(|k| size(case, k));
        let x = pattern([batch, channels, side, side], 4, &device).require_grad();
        let y = echoseg_kernels::resize_bilinear(x.clone(), [out, out]);
        let r = pattern(y.dims(), 5, &device);
        let grads = (y.clone() * r).sum().backward();
        let what = format!("up-sampling {channels} channels {side} → {out} px");
        assert_matches(grad(&x, &grads), &case["dx"], &format!("{what}: input gradient"));
        assert_matches(values(y), &case["y"], &format!("{what}: output"));
    }
}
