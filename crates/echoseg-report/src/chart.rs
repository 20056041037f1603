//! Drawing charts to PNG (and SVG for line art) with plotters and the bundled font.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::ReportError;

/// The bundled DejaVu Sans, so figures look the same on every machine (no system fonts needed).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// The font family name figures use.
pub const FAMILY: &str = "sans-serif";

fn register_font() {
    REGISTER.call_once(|| {
        // The bytes are a valid TrueType font compiled into the binary; failure would be a build defect.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// A figure that can draw itself on any plotters backend.
pub trait Chart {
    /// Size in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws the chart filling `area`.
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Renders a chart to PNG bytes.
pub fn png<C: Chart>(chart: &C) -> Result<Vec<u8>, ReportError> {
    register_font();
    let (w, h) = chart.size();
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| ReportError::Figure(e.to_string()))?;
        chart.draw(&root).map_err(ReportError::Figure)?;
        root.present().map_err(|e| ReportError::Figure(e.to_string()))?;
    }
    let mut out = Vec::new();
    image::ImageEncoder::write_image(image::codecs::png::PngEncoder::new(&mut out), &rgb, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| ReportError::Figure(e.to_string()))?;
    Ok(out)
}

/// Renders a chart to an SVG document.
pub fn svg<C: Chart>(chart: &C) -> Result<String, ReportError> {
    register_font();
    let (w, h) = chart.size();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| ReportError::Figure(e.to_string()))?;
        chart.draw(&root).map_err(ReportError::Figure)?;
        root.present().map_err(|e| ReportError::Figure(e.to_string()))?;
    }
    Ok(text)
}

/// Colour of the i-th series (Okabe–Ito, readable by colour-blind readers).
pub fn series_colour(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(0, 114, 178),
        RGBColor(230, 159, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(86, 180, 233),
        RGBColor(213, 94, 0),
        RGBColor(240, 228, 66),
        RGBColor(0, 0, 0),
    ];
    PALETTE[i % PALETTE.len()]
}

/// A sequential colour for `t` in [0, 1] (light yellow to dark blue).
pub fn sequential(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let stops = [(255.0, 255.0, 217.0), (127.0, 205.0, 187.0), (29.0, 145.0, 192.0), (37.0, 52.0, 148.0)];
    let x = t * (stops.len() - 1) as f64;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f64;
    let lerp = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(lerp(stops[i].0, stops[i + 1].0), lerp(stops[i].1, stops[i + 1].1), lerp(stops[i].2, stops[i + 1].2))
}

/// Text style of the given size in the bundled font.
pub fn text(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().into()
}
