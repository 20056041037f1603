//! Object outlines as an annotator draws them: boundary tracing, Douglas–Peucker
//! simplification, and rasterising a polygon back to pixels.

/// The 8 neighbour directions, clockwise with y pointing down, starting east.
const DIRS: [(i64, i64); 8] = [(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)];

fn direction(from: (i64, i64), to: (i64, i64)) -> usize {
    let d = (to.0 - from.0, to.1 - from.1);
    DIRS.iter().position(|&x| x == d).unwrap_or(4)
}

/// The outer boundary of the 8-connected pixel set containing `start` (its top-most, left-most
/// pixel), in order (Moore-neighbour tracing with Jacob's stopping rule).
pub fn trace(member: &dyn Fn(i64, i64) -> bool, start: (i64, i64)) -> Vec<(i64, i64)> {
    // The next boundary pixel clockwise around `current`, scanning from the outside pixel `back`,
    // and the outside pixel scanned just before it.
    let step = |current: (i64, i64), back: (i64, i64)| {
        let from = direction(current, back);
        (1..=8).find_map(|k| {
            let d = (from + k) % 8;
            let n = (current.0 + DIRS[d].0, current.1 + DIRS[d].1);
            let prev = (from + k - 1) % 8;
            member(n.0, n.1).then_some((n, (current.0 + DIRS[prev].0, current.1 + DIRS[prev].1)))
        })
    };
    let mut contour = vec![start];
    // The pixel west of the top-most, left-most pixel is outside: the scan starts there.
    let (mut current, mut back) = (start, (start.0 - 1, start.1));
    for _ in 0..1_000_000 {
        let Some((next, outside)) = step(current, back) else { break }; // an isolated pixel
        // Back at the start and about to repeat the first step: the loop is closed.
        if current == start && contour.len() > 1 && contour.get(1) == Some(&next) {
            contour.pop();
            break;
        }
        (current, back) = (next, outside);
        contour.push(current);
    }
    contour
}

fn point_segment_distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (vx, vy) = (b.0 - a.0, b.1 - a.1);
    let len2 = vx * vx + vy * vy;
    let t = if len2 > 0.0 { (((p.0 - a.0) * vx + (p.1 - a.1) * vy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    ((p.0 - a.0 - t * vx).powi(2) + (p.1 - a.1 - t * vy).powi(2)).sqrt()
}

fn douglas_peucker(points: &[(f64, f64)], tolerance: f64, out: &mut Vec<(f64, f64)>) {
    let (Some(&first), Some(&last)) = (points.first(), points.last()) else { return };
    let (mut worst, mut at) = (0.0, 0);
    for (i, &p) in points.iter().enumerate().skip(1).take(points.len().saturating_sub(2)) {
        let d = point_segment_distance(p, first, last);
        if d > worst {
            worst = d;
            at = i;
        }
    }
    if worst > tolerance && at > 0 {
        douglas_peucker(&points[..=at], tolerance, out);
        out.pop();
        douglas_peucker(&points[at..], tolerance, out);
    } else {
        out.push(first);
        out.push(last);
    }
}

/// Simplifies a closed contour with tolerance `tolerance` px (Douglas–Peucker), as an annotator's
/// polygon with few vertices.
pub fn simplify(contour: &[(i64, i64)], tolerance: f64) -> Vec<(f64, f64)> {
    let pts: Vec<(f64, f64)> = contour.iter().map(|&(x, y)| (x as f64 + 0.5, y as f64 + 0.5)).collect();
    if pts.len() < 4 {
        return pts;
    }
    // Split the loop at the point farthest from the start and simplify both halves.
    let far = (1..pts.len())
        .max_by(|&a, &b| {
            let da = (pts[a].0 - pts[0].0).hypot(pts[a].1 - pts[0].1);
            let db = (pts[b].0 - pts[0].0).hypot(pts[b].1 - pts[0].1);
            da.total_cmp(&db)
        })
        .unwrap_or(1);
    let mut first_half = Vec::new();
    douglas_peucker(&pts[..=far], tolerance, &mut first_half);
    let mut second = pts[far..].to_vec();
    second.push(pts[0]);
    let mut second_half = Vec::new();
    douglas_peucker(&second, tolerance, &mut second_half);
    first_half.pop();
    second_half.pop();
    first_half.extend(second_half);
    first_half
}

/// The pixels (x, y) of a `width × height` grid whose centre lies inside the polygon or within
/// half a pixel of its outline.
pub fn rasterise(polygon: &[(f64, f64)], width: usize, height: usize) -> Vec<(usize, usize)> {
    if polygon.is_empty() {
        return Vec::new();
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for &(x, y) in polygon {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    let xs = (x0 - 1.0).max(0.0) as usize..((x1 + 1.0).ceil() as usize).min(width);
    let ys = (y0 - 1.0).max(0.0) as usize..((y1 + 1.0).ceil() as usize).min(height);
    let mut out = Vec::new();
    for y in ys {
        for x in xs.clone() {
            let p = (x as f64 + 0.5, y as f64 + 0.5);
            let n = polygon.len();
            let mut inside = false;
            let mut near = false;
            for i in 0..n {
                let (a, b) = (polygon[i], polygon[(i + 1) % n]);
                if (a.1 > p.1) != (b.1 > p.1) && p.0 < a.0 + (p.1 - a.1) * (b.0 - a.0) / (b.1 - a.1) {
                    inside = !inside;
                }
                near |= point_segment_distance(p, a, b) <= 0.5;
            }
            if inside || near {
                out.push((x, y));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disc(r: f64) -> impl Fn(i64, i64) -> bool {
        move |x, y| ((x as f64 - 10.0).powi(2) + (y as f64 - 10.0).powi(2)).sqrt() <= r
    }

    #[test]
    fn traces_a_square_once_around() {
        let square = |x: i64, y: i64| (2..6).contains(&x) && (3..7).contains(&y);
        let c = trace(&square, (2, 3));
        assert_eq!(c.len(), 12, "{c:?}");
        assert!(c.iter().all(|&(x, y)| square(x, y)));
    }

    #[test]
    fn simplified_disc_keeps_its_area_roughly_with_few_vertices() {
        let member = disc(6.0);
        let area = (0..21).flat_map(|y| (0..21).map(move |x| (x, y))).filter(|&(x, y)| member(x, y)).count();
        let start = (0..21).flat_map(|y| (0..21).map(move |x| (x, y))).find(|&(x, y)| member(x, y)).unwrap();
        let contour = trace(&member, start);
        let polygon = simplify(&contour, 1.0);
        assert!(polygon.len() < contour.len() / 2, "{} of {} vertices", polygon.len(), contour.len());
        let drawn = rasterise(&polygon, 21, 21).len();
        assert!((drawn as f64 - area as f64).abs() < 0.15 * area as f64, "{drawn} vs {area}");
    }

    #[test]
    fn a_one_pixel_line_survives() {
        let line = |x: i64, y: i64| y == 4 && (1..15).contains(&x);
        let contour = trace(&line, (1, 4));
        let drawn = rasterise(&simplify(&contour, 1.0), 20, 10);
        assert_eq!(drawn.len(), 14, "{drawn:?}");
    }
}
