//! The progress line on a terminal, rendered from a sample: a spinner with what is happening
//! while the totals are unknown, then a bar with sizes, a smoothed rate and an ETA. It always
//! fits the terminal's width: the least useful parts go first, the path is elided in the
//! middle.

use std::time::Duration;

use indicatif::BinaryBytes;

use super::table::elide;
use crate::progress::{ByteSources, ProgressSample};

/// What the line shows besides the sample.
pub struct View<'a> {
    pub verb: &'a str,
    /// What `files_done` counts (files, packs, snapshots).
    pub unit: &'a str,
    pub elapsed: Duration,
    /// Seconds left, once a rate is known.
    pub eta: Option<Duration>,
    /// Bytes per second, smoothed.
    pub rate: f64,
    /// Advances the spinner.
    pub tick: usize,
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The line for `sample`, no wider than `width` characters.
pub fn render(sample: &ProgressSample, view: &View<'_>, width: usize) -> String {
    if sample.bytes_total == 0 && sample.files_total == 0 {
        return spinning(sample, view, width);
    }
    let fraction = match sample.bytes_total {
        0 => sample.files_done as f64 / sample.files_total.max(1) as f64,
        total => sample.bytes_done as f64 / total as f64,
    }
    .min(1.0);
    let head = format!("{} {}", view.verb, clock(view.elapsed));
    let figures = figures(sample, view, fraction);
    let counted = format!("{}/{} {}", sample.files_done, sample.files_total, view.unit);
    let mut parts = vec![head, figures, counted];
    parts.extend(sources_text(&sample.sources));
    let room = width.saturating_sub(len(&parts.join(" ")) + 1);
    if room >= 12 {
        let bar_width = (room / 3).clamp(10, 30);
        parts.insert(1, bar(fraction, bar_width));
    }
    fit(parts, &sample.current, width)
}

/// Before the totals are known: the spinner, the phase, the time and what was done so far.
fn spinning(sample: &ProgressSample, view: &View<'_>, width: usize) -> String {
    let phase = if sample.phase.is_empty() { "starting" } else { sample.phase };
    let spinner = SPINNER[view.tick % SPINNER.len()];
    let mut parts = vec![format!("{spinner} {}: {phase} {}", view.verb, clock(view.elapsed))];
    if sample.files_done > 0 || sample.bytes_done > 0 {
        let done = BinaryBytes(sample.bytes_done);
        parts.push(format!("{} {}, {done}", sample.files_done, view.unit));
    }
    fit(parts, &sample.current, width)
}

/// "45% 1.20 GiB/2.70 GiB 110.00 MiB/s ETA 0:14"
fn figures(sample: &ProgressSample, view: &View<'_>, fraction: f64) -> String {
    let eta = view.eta.map_or_else(|| "--".to_string(), clock);
    format!(
        "{:>3}% {}/{} {}/s ETA {eta}",
        (fraction * 100.0).floor() as u64,
        BinaryBytes(sample.bytes_done),
        BinaryBytes(sample.bytes_total.max(sample.bytes_done)),
        BinaryBytes(view.rate as u64),
    )
}

/// "(2.0 GiB read, 6.0 GiB holes, 300 MiB new)": where the bytes went, naming only what
/// happened (nothing at all for a restore).
fn sources_text(sources: &ByteSources<u64>) -> Option<String> {
    let named: Vec<String> = [
        (sources.read, "read"),
        (sources.holes, "holes"),
        (sources.zero, "zero"),
        (sources.unchanged, "unchanged"),
        (sources.new, "new"),
    ]
    .into_iter()
    .filter(|&(bytes, _)| bytes > 0)
    .map(|(bytes, what)| format!("{} {what}", BinaryBytes(bytes)))
    .collect();
    (!named.is_empty()).then(|| format!("({})", named.join(", ")))
}

fn bar(fraction: f64, width: usize) -> String {
    let inner = width - 2;
    let full = ((fraction * inner as f64).round() as usize).min(inner);
    format!("[{}{}]", "#".repeat(full), "-".repeat(inner - full))
}

/// The parts joined by spaces and the path after them in what room is left; parts that do
/// not fit are dropped from the end, the first is cut.
fn fit(mut parts: Vec<String>, path: &str, width: usize) -> String {
    while parts.len() > 1 && len(&parts.join(" ")) > width {
        parts.pop();
    }
    let mut line = elide(&parts.join(" "), width);
    let room = width.saturating_sub(len(&line) + 1);
    if !path.is_empty() && room >= 10 {
        line.push(' ');
        line.push_str(&elide(path, room));
    }
    line
}

fn len(text: &str) -> usize {
    text.chars().count()
}

/// `0:07`, `12:34`, `1:02:03`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s / 3600 {
        0 => format!("{}:{:02}", s / 60, s % 60),
        h => format!("{h}:{:02}:{:02}", (s / 60) % 60, s % 60),
    }
}

/// The byte rate smoothed over the last several seconds, so that the ETA does not swing with
/// every sample nor start wildly wrong.
#[derive(Default)]
pub struct Rate {
    last: Option<(Duration, u64)>,
    smoothed: f64,
}

/// Seconds over which the rate is averaged.
const SMOOTHING_S: f64 = 5.0;
/// No ETA before this: the first seconds' rate says little.
const WARM_UP: Duration = Duration::from_secs(2);

impl Rate {
    /// Takes a sample of the bytes done at `elapsed`.
    pub fn update(&mut self, elapsed: Duration, done: u64) {
        if let Some((then, before)) = self.last {
            let dt = elapsed.saturating_sub(then).as_secs_f64();
            if dt > 0.0 {
                let now = done.saturating_sub(before) as f64 / dt;
                let weight = 1.0 - (-dt / SMOOTHING_S).exp();
                self.smoothed += weight * (now - self.smoothed);
            }
        }
        self.last = Some((elapsed, done));
    }

    pub fn per_second(&self) -> f64 {
        self.smoothed
    }

    /// The time left for `remaining` bytes, once the rate means something.
    pub fn eta(&self, elapsed: Duration, remaining: u64) -> Option<Duration> {
        (elapsed >= WARM_UP && self.smoothed >= 1.0)
            .then(|| Duration::from_secs_f64(remaining as f64 / self.smoothed))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn sample() -> ProgressSample {
        ProgressSample {
            files_done: 1200,
            bytes_done: 1288 << 20,
            files_total: 3400,
            bytes_total: 2765 << 20,
            current:
                "/home/ann/projects/cairn/target/debug/deps/libsomething-0123456789abcdef.rlib"
                    .into(),
            ..ProgressSample::default()
        }
    }

    /// A VM image's backup: the bytes of every source, for this and the status lines' tests.
    pub(in crate::commands::output) fn image_backup() -> ProgressSample {
        ProgressSample {
            files_done: 1,
            bytes_done: 9 << 30,
            files_total: 1,
            bytes_total: 9 << 30,
            sources: ByteSources {
                read: 2 << 30,
                holes: 6 << 30,
                zero: 3 << 20,
                unchanged: 1 << 30,
                new: 300 << 20,
            },
            ..ProgressSample::default()
        }
    }

    fn view(eta: Option<u64>) -> View<'static> {
        View {
            verb: "backup",
            unit: "files",
            elapsed: Duration::from_secs(12),
            eta: eta.map(Duration::from_secs),
            rate: 110.0 * 1_048_576.0,
            tick: 3,
        }
    }

    /// The rendered lines at the two widths people use, pinned (issue #17).
    #[test]
    fn lines_fit_80_and_120_columns() {
        let at_120 = render(&sample(), &view(Some(14)), 120);
        assert_eq!(
            at_120,
            "backup 0:12 [######-------]  46% 1.26 GiB/2.70 GiB 110.00 MiB/s ETA 0:14 1200/3400 \
             files /home/ann/proje…6789abcdef.rlib"
        );
        let at_80 = render(&sample(), &view(Some(14)), 80);
        assert_eq!(
            at_80,
            "backup 0:12  46% 1.26 GiB/2.70 GiB 110.00 MiB/s ETA 0:14 1200/3400 files"
        );
        for width in [40, 60, 80, 100, 120, 200] {
            let line = render(&sample(), &view(None), width);
            assert!(len(&line) <= width, "{width}: {line}");
        }
    }

    #[test]
    fn unknown_totals_spin_with_the_phase_instead_of_a_full_bar() {
        let waiting = ProgressSample { phase: "scanning", ..ProgressSample::default() };
        let line = render(&waiting, &view(None), 80);
        assert_eq!(line, "⠸ backup: scanning 0:12");
        assert!(!line.contains("0 B/0 B"));
    }

    #[test]
    fn the_eta_waits_for_a_rate_and_then_follows_it_smoothly() {
        let mut rate = Rate::default();
        rate.update(Duration::ZERO, 0);
        rate.update(Duration::from_secs(1), 100 << 20);
        assert_eq!(rate.eta(Duration::from_secs(1), 1 << 30), None, "warming up");
        for s in 2..=30 {
            rate.update(Duration::from_secs(s), s * (100 << 20));
        }
        let eta = rate.eta(Duration::from_secs(30), 1000 << 20).unwrap();
        assert!((9..=11).contains(&eta.as_secs()), "{eta:?}");
        // One stalled sample moves the ETA, it does not send it to infinity.
        rate.update(Duration::from_secs(31), 30 * (100 << 20));
        let stalled = rate.eta(Duration::from_secs(31), 1000 << 20).unwrap();
        assert!(stalled.as_secs() < 15, "{stalled:?}");
    }

    #[test]
    fn the_bar_says_where_the_bytes_went() {
        assert_eq!(
            sources_text(&image_backup().sources).unwrap(),
            "(2.00 GiB read, 6.00 GiB holes, 3.00 MiB zero, 1.00 GiB unchanged, 300.00 MiB new)"
        );
        assert_eq!(sources_text(&ByteSources::default()), None);
    }

    #[test]
    fn clocks_read_like_clocks() {
        assert_eq!(clock(Duration::from_secs(7)), "0:07");
        assert_eq!(clock(Duration::from_secs(754)), "12:34");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
    }
}
