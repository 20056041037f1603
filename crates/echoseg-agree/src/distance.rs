//! Exact Euclidean distance transforms (Felzenszwalb and Huttenlocher's lower envelope of parabolas).

const FAR: f32 = 1e12;

/// Squared Euclidean distance from every pixel to the nearest pixel where `feature` is true
/// (a large value when there is none), written into `out`, which is reused between calls.
pub fn squared_distance(feature: &[bool], width: usize, height: usize, out: &mut Vec<f32>) {
    out.clear();
    out.extend(feature.iter().map(|&f| if f { 0.0 } else { FAR }));
    let mut scratch = Scratch::new(width.max(height));
    for x in 0..width {
        scratch.load(out.iter().skip(x).step_by(width).copied());
        scratch.transform();
        for (y, v) in scratch.result().enumerate() {
            out[y * width + x] = v;
        }
    }
    for y in 0..height {
        let row = &mut out[y * width..(y + 1) * width];
        scratch.load(row.iter().copied());
        scratch.transform();
        for (dst, v) in row.iter_mut().zip(scratch.result()) {
            *dst = v;
        }
    }
}

/// True when `d2` (from [`squared_distance`]) means no feature pixel exists.
pub fn is_far(d2: f32) -> bool {
    d2 >= FAR * 0.5
}

struct Scratch {
    f: Vec<f32>,
    d: Vec<f32>,
    v: Vec<usize>,
    z: Vec<f32>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Self { f: Vec::with_capacity(n), d: vec![0.0; n], v: vec![0; n], z: vec![0.0; n + 1] }
    }

    fn load(&mut self, values: impl Iterator<Item = f32>) {
        self.f.clear();
        self.f.extend(values);
    }

    fn result(&self) -> impl Iterator<Item = f32> + '_ {
        self.d[..self.f.len()].iter().copied()
    }

    fn transform(&mut self) {
        let n = self.f.len();
        if n == 0 {
            return;
        }
        let (f, v, z, d) = (&self.f, &mut self.v, &mut self.z, &mut self.d);
        let mut k = 0usize;
        v[0] = 0;
        z[0] = f32::NEG_INFINITY;
        z[1] = f32::INFINITY;
        for q in 1..n {
            let intersect = |p: usize| ((f[q] + (q * q) as f32) - (f[p] + (p * p) as f32)) / (2.0 * (q as f32 - p as f32));
            let mut s = intersect(v[k]);
            // z[0] is -inf, so the loop always stops at k = 0 at the latest
            while s <= z[k] {
                k -= 1;
                s = intersect(v[k]);
            }
            k += 1;
            v[k] = q;
            z[k] = s;
            z[k + 1] = f32::INFINITY;
        }
        k = 0;
        for (q, out) in d.iter_mut().enumerate().take(n) {
            while z[k + 1] < q as f32 {
                k += 1;
            }
            let dq = q as f32 - v[k] as f32;
            *out = dq * dq + f[v[k]];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_brute_force() {
        let (w, h) = (13, 9);
        let feature: Vec<bool> = (0..w * h).map(|i| i % 17 == 3 || i == 50).collect();
        let mut d = Vec::new();
        squared_distance(&feature, w, h, &mut d);
        for y in 0..h {
            for x in 0..w {
                let brute = (0..w * h)
                    .filter(|&j| feature[j])
                    .map(|j| {
                        let (fx, fy) = ((j % w) as f32, (j / w) as f32);
                        (fx - x as f32).powi(2) + (fy - y as f32).powi(2)
                    })
                    .fold(f32::INFINITY, f32::min);
                assert!((d[y * w + x] - brute).abs() < 1e-3, "({x},{y}) {} vs {brute}", d[y * w + x]);
            }
        }
    }

    #[test]
    fn no_feature_is_far() {
        let mut d = Vec::new();
        squared_distance(&[false; 6], 3, 2, &mut d);
        assert!(d.iter().all(|&v| is_far(v)));
    }
}
