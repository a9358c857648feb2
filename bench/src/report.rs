//! Rows, ratios, the printed tables and the JSON document.

use serde_json::{json, Value};

/// What a row is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The kernel's own floor (in-process syscalls).
    Floor,
    /// The local tool people use today (bpftool).
    Peer,
    /// bpfmapd.
    Ours,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Floor => "floor",
            Role::Peer => "peer",
            Role::Ours => "bpfmapd",
        }
    }
}

/// One timed way of moving a whole map.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was timed.
    pub name: String,
    /// Floor, peer or ours.
    pub role: Role,
    /// Seconds of each run.
    pub runs: Vec<f64>,
    /// CPU seconds of each run spent by the process doing the work (the daemon for its rows,
    /// the benchmark for the floor), from /proc in 10 ms ticks: the cost, which other work on
    /// the machine does not inflate the way it inflates wall time.
    pub daemon_cpu: Vec<f64>,
}

impl Row {
    /// Records a run the daemon served.
    pub fn push(&mut self, secs: f64, daemon_cpu: f64) {
        self.runs.push(secs);
        self.daemon_cpu.push(daemon_cpu);
    }

    /// The least daemon CPU of the runs, seconds.
    pub fn daemon_cpu(&self) -> Option<f64> {
        (!self.daemon_cpu.is_empty())
            .then(|| self.daemon_cpu.iter().copied().fold(f64::NAN, f64::min))
    }

    /// The median run.
    pub fn median(&self) -> f64 {
        median(&self.runs)
    }

    /// The fastest run: the estimate least touched by other work on a shared machine (noise
    /// only ever adds time). Ratios are taken between fastest runs.
    pub fn best(&self) -> f64 {
        self.runs.iter().copied().fold(f64::NAN, f64::min)
    }
}

/// The median of `v` (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// A section of whole-map rows (a dump or a bulk load of `entries` entries).
#[derive(Debug, Clone)]
pub struct Section {
    /// Title, e.g. "Dump 1,000,000 entries".
    pub title: String,
    /// JSON key, e.g. "dump_1000000".
    pub key: String,
    /// Entries moved by each run.
    pub entries: u64,
    /// The rows, floor and peer first.
    pub rows: Vec<Row>,
}

impl Section {
    fn role(&self, role: Role) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.role == role && !r.runs.is_empty())
            .map(Row::best)
    }

    /// The fastest run of the row called `name`, seconds.
    pub fn time_of(&self, name: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.name == name && !r.runs.is_empty())
            .map(Row::best)
    }

    /// The floor's fastest run, seconds.
    pub fn floor(&self) -> Option<f64> {
        self.role(Role::Floor)
    }

    /// The peer's fastest run, seconds.
    pub fn peer(&self) -> Option<f64> {
        self.role(Role::Peer)
    }

    /// Prints the section as a table.
    pub fn print(&self) {
        let floor = self.floor();
        let peer = self.peer();
        let mut t = Table::new(&[
            "",
            "best s",
            "median s",
            "runs",
            "ns/entry",
            "M entries/s",
            "x floor",
            "vs bpftool",
            "CPU ns/entry (1)",
        ]);
        for r in self.rows.iter().filter(|r| !r.runs.is_empty()) {
            let m = r.best();
            t.row(vec![
                format!("{} ({})", r.name, r.role.name()),
                format!("{m:.3}"),
                format!("{:.3}", r.median()),
                r.runs.len().to_string(),
                format!("{:.0}", m * 1e9 / self.entries as f64),
                format!("{:.2}", self.entries as f64 / m / 1e6),
                floor.map_or("-".into(), |f| format!("{:.2}x", m / f)),
                peer.map_or("-".into(), |p| format!("{:.1}x faster", p / m)),
                r.daemon_cpu().map_or("-".into(), |c| {
                    format!("{:.0}", c * 1e9 / self.entries as f64)
                }),
            ]);
        }
        println!("\n{}", self.title);
        t.print();
        println!(
            "  (1) CPU time per entry of the process doing the work: the daemon for bpfmapd's \
             rows, this process for the floor (10 ms ticks; not inflated by other load)"
        );
    }

    /// The section as JSON.
    pub fn json(&self) -> Value {
        let floor = self.floor();
        let peer = self.peer();
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let m = r.best();
                json!({
                    "name": r.name,
                    "role": r.role.name(),
                    "runs_s": r.runs,
                    "best_s": m,
                    "median_s": r.median(),
                    "ns_per_entry": m * 1e9 / self.entries as f64,
                    "x_floor": floor.map(|f| m / f),
                    "speedup_vs_peer": peer.map(|p| p / m),
                    "worker_cpu_s": r.daemon_cpu,
                })
            })
            .collect();
        json!({ "title": self.title, "entries": self.entries, "rows": rows })
    }
}

/// A plain text table: first column left-aligned, the others right-aligned.
#[derive(Debug)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints it, indented by two spaces.
    pub fn print(&self) {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let width: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for r in &self.rows {
            let mut line = String::from(" ");
            for (c, cell) in r.iter().enumerate() {
                if c == 0 {
                    line.push_str(&format!(" {cell:<w$}", w = width[c]));
                } else {
                    line.push_str(&format!("  {cell:>w$}", w = width[c]));
                }
            }
            println!("{}", line.trim_end());
        }
    }
}

/// A target of the issue, checked against the run's ratios.
#[derive(Debug, Clone)]
pub struct Target {
    /// What it asks.
    pub what: String,
    /// The measured figure, in words.
    pub measured: String,
    /// Met or not (None: not measured in this run).
    pub met: Option<bool>,
}

/// Prints the targets.
pub fn print_targets(targets: &[Target]) {
    let mut t = Table::new(&["target", "measured", ""]);
    for x in targets {
        t.row(vec![
            x.what.clone(),
            x.measured.clone(),
            match x.met {
                Some(true) => "met".into(),
                Some(false) => "MISSED".into(),
                None => "not measured".into(),
            },
        ]);
    }
    println!("\nTargets");
    t.print();
}

/// The targets as JSON.
pub fn targets_json(targets: &[Target]) -> Value {
    Value::Array(
        targets
            .iter()
            .map(|t| json!({"target": t.what, "measured": t.measured, "met": t.met}))
            .collect(),
    )
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
