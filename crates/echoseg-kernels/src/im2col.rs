//! The geometry of a "same" convolution and its im2col on plain slices.

use std::ops::Range;

/// The shape of one "same" convolution: stride 1, one group, odd square kernel, size kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Same {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Kernel side (1, 3, …).
    pub kernel: usize,
    /// Spacing of the kernel's taps.
    pub dilation: usize,
}

impl Same {
    /// Pixels of one image.
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Rows of the im2col matrix: one per input channel and kernel tap, in the weight's order.
    pub fn taps(&self) -> usize {
        self.cin * self.kernel * self.kernel
    }

    /// Zero rows and columns on each side that keep the output the input's size.
    pub fn pad(&self) -> usize {
        self.dilation * (self.kernel - 1) / 2
    }

    /// Whether the convolution is a plain channel mix (1×1), which needs no im2col.
    pub fn pointwise(&self) -> bool {
        self.kernel == 1
    }

    /// The offsets (dy, dx) of tap (ky, kx) from the output pixel.
    fn offset(&self, ky: usize, kx: usize) -> (isize, isize) {
        let pad = self.pad() as isize;
        ((ky * self.dilation) as isize - pad, (kx * self.dilation) as isize - pad)
    }

    /// For each tap row (channel, ky, kx): the channel, and the pixel spans that read inside the
    /// image: `(y range, x range, dy, dx)` with output pixel (y, x) reading input (y+dy, x+dx).
    fn spans(&self) -> impl Iterator<Item = (usize, Span)> + '_ {
        let k = self.kernel;
        (0..self.cin).flat_map(move |c| {
            (0..k * k).map(move |t| {
                let (dy, dx) = self.offset(t / k, t % k);
                (c, Span::new(dy, dx, self.height, self.width))
            })
        })
    }
}

/// The output pixels whose tap lands inside the image, and the shift to the input pixel.
#[derive(Clone, Debug)]
struct Span {
    rows: Range<usize>,
    cols: Range<usize>,
    dy: isize,
    dx: isize,
}

impl Span {
    fn new(dy: isize, dx: isize, height: usize, width: usize) -> Self {
        let inside = |shift: isize, len: usize| {
            let start = (-shift).clamp(0, len as isize) as usize;
            let end = (len as isize - shift).clamp(start as isize, len as isize) as usize;
            start..end
        };
        Self { rows: inside(dy, height), cols: inside(dx, width), dy, dx }
    }

    /// The part of the band `rows` this tap reads inside the image, or `None` when it reads
    /// only padding.
    fn band(&self, rows: &Range<usize>, width: usize, pixels: usize) -> Option<Band> {
        let (first, last) = (rows.start.max(self.rows.start), rows.end.min(self.rows.end));
        if first >= last || self.cols.is_empty() {
            return None;
        }
        let to = (first - rows.start) * width..(last - rows.start) * width;
        let start = (first as isize + self.dy) * width as isize + self.dx;
        let end = start + to.len() as isize;
        let skip = (-start).max(0) as usize;
        let short = (end - pixels as isize).max(0) as usize;
        Some(Band { to, from: (start + skip as isize) as usize..(end - short as isize) as usize, skip, short })
    }

    /// Zeroes the columns of `rows` (whole image rows) this tap reads outside the image.
    fn zero_borders(&self, rows: &mut [f32], width: usize) {
        if self.cols.len() == width {
            return;
        }
        for row in rows.chunks_exact_mut(width) {
            row[..self.cols.start].fill(0.0);
            row[self.cols.end..].fill(0.0);
        }
    }
}

/// Where one tap row's inside part goes in a band of output rows and where it reads from.
struct Band {
    /// The band's values whose rows read inside the image.
    to: Range<usize>,
    /// The plane's values they read, one contiguous run (`skip` shorter at the start and `short`
    /// at the end, where the run would leave the plane: those are border columns).
    from: Range<usize>,
    skip: usize,
    short: usize,
}

/// Fills `col` ([taps, rows · w]) for the output rows `rows` of one image `x` ([cin, h, w]).
/// Every value is written (taps outside the image read 0), so `col` may hold anything before.
pub fn im2col(geometry: &Same, x: &[f32], rows: Range<usize>, col: &mut [f32]) {
    let (pixels, width) = (geometry.pixels(), geometry.width);
    for (row, (c, span)) in col.chunks_exact_mut(rows.len() * width).zip(geometry.spans()) {
        let plane = &x[c * pixels..(c + 1) * pixels];
        let Some(band) = span.band(&rows, width, pixels) else {
            row.fill(0.0);
            continue;
        };
        row[..band.to.start].fill(0.0);
        row[band.to.end..].fill(0.0);
        // One copy for all rows: the values it brings into the border columns from the
        // neighbouring rows are padding, zeroed next.
        row[band.to.start + band.skip..band.to.end - band.short].copy_from_slice(&plane[band.from.clone()]);
        span.zero_borders(&mut row[band.to.clone()], width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(kernel: usize, dilation: usize) -> Same {
        Same { batch: 1, cin: 2, cout: 1, height: 5, width: 7, kernel, dilation }
    }

    /// im2col read one value at a time, as its definition says.
    fn naive(g: &Same, x: &[f32]) -> Vec<f32> {
        let mut col = vec![0.0; g.taps() * g.pixels()];
        for c in 0..g.cin {
            for ky in 0..g.kernel {
                for kx in 0..g.kernel {
                    let (dy, dx) = g.offset(ky, kx);
                    let row = (c * g.kernel + ky) * g.kernel + kx;
                    for py in 0..g.height {
                        for px in 0..g.width {
                            let (sy, sx) = (py as isize + dy, px as isize + dx);
                            if sy >= 0 && sx >= 0 && (sy as usize) < g.height && (sx as usize) < g.width {
                                col[row * g.pixels() + py * g.width + px] = x[c * g.pixels() + sy as usize * g.width + sx as usize];
                            }
                        }
                    }
                }
            }
        }
        col
    }

    #[test]
    fn im2col_reads_every_tap_as_defined_in_whole_images_and_in_bands() {
        for (kernel, dilation) in [(1, 1), (3, 1), (3, 2), (3, 4), (5, 3)] {
            let g = geometry(kernel, dilation);
            let x: Vec<f32> = (0..g.cin * g.pixels()).map(|i| i as f32 * 0.5 - 3.0).collect();
            let mut col = vec![f32::NAN; g.taps() * g.pixels()];
            im2col(&g, &x, 0..g.height, &mut col);
            let expected = naive(&g, &x);
            assert_eq!(col, expected, "kernel {kernel} dilation {dilation}");
            // a band of rows is the same rows of the whole matrix
            let mut band = vec![f32::NAN; g.taps() * 2 * g.width];
            im2col(&g, &x, 2..4, &mut band);
            for (r, got) in band.chunks_exact(2 * g.width).enumerate() {
                let whole = &expected[r * g.pixels() + 2 * g.width..r * g.pixels() + 4 * g.width];
                assert_eq!(got, whole, "kernel {kernel} dilation {dilation}, band row {r}");
            }
        }
    }
}
