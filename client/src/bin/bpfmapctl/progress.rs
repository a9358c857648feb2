//! A progress bar for long dumps and loads: drawn on stderr only when stderr is a
//! terminal, and only once the operation has run for a second.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Shows nothing for short operations or when stderr is not a terminal.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    shown: bool,
}

/// How long an operation runs before the bar appears.
const DELAY: Duration = Duration::from_secs(1);

impl Progress {
    /// A bar for `total` items (`None`: unknown, a counter). `allowed` is false where a bar
    /// would mix with output on the same terminal.
    pub fn new(what: &str, total: Option<u64>, allowed: bool) -> Self {
        let bar = (allowed && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
            let template = if total.is_some() {
                "{msg} [{bar:40}] {human_pos}/{human_len} ({elapsed}, {eta} left)"
            } else {
                "{spinner} {msg}: {human_pos} entries ({elapsed})"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.to_owned());
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            shown: false,
        }
    }

    /// Counts `n` more items done.
    pub fn inc(&mut self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            if !self.shown && self.started.elapsed() >= DELAY {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                self.shown = true;
            }
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
