//! Shared by the benchmarks: the printed table (with its JSON form), timing, and the PyTorch
//! reference run.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Instant;

/// One row of the table.
pub struct Row {
    label: String,
    median: f64,
    min: f64,
    unit: &'static str,
}

/// The table, keyed for JSON, in insertion order for printing.
#[derive(Default)]
pub struct Table {
    pub rows: Vec<(String, Row)>,
    pub reference: BTreeMap<String, (f64, f64)>,
}

impl Table {
    pub fn add(&mut self, key: &str, label: String, unit: &'static str, (median, min): (f64, f64)) {
        let reference = match self.reference.get(key) {
            Some((m, _)) => format!("{m:>12.2}   {:>6.1}×", m / median),
            None => format!("{:>12}   {:>7}", "-", ""),
        };
        println!("{label:<52} {median:>11.2} {min:>11.2} {reference}  {unit}");
        self.rows.push((
            key.to_string(),
            Row {
                label,
                median,
                min,
                unit,
            },
        ));
    }

    pub fn json(&self) -> String {
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|(key, row)| {
                let reference = match self.reference.get(key) {
                    Some((median, min)) => {
                        format!(r#","torch_median":{median},"torch_min":{min}"#)
                    }
                    None => String::new(),
                };
                format!(
                    r#""{key}":{{"label":"{}","median":{},"min":{},"unit":"{}"{reference}}}"#,
                    row.label, row.median, row.min, row.unit
                )
            })
            .collect();
        format!("{{{}}}", rows.join(","))
    }
}

/// Median and min of `repeats` timings of `work` (seconds), after `warmup` untimed runs.
pub fn time(warmup: usize, repeats: usize, mut work: impl FnMut()) -> (f64, f64) {
    for _ in 0..warmup {
        work();
    }
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

/// Runs the PyTorch reference (`benches/reference/torch_imle.py --json`, plus `extra_args`)
/// when a python with torch is there; its rows by key.
pub fn torch_reference(extra_args: &[&str]) -> BTreeMap<String, (f64, f64)> {
    let python = std::env::var("IMLE_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    // The checkout this was built in, else the current folder (a binary carried to another
    // machine runs from a copy of the repository).
    let built_in = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/reference/torch_imle.py"
    );
    let script = if std::path::Path::new(built_in).exists() {
        built_in
    } else {
        "benches/reference/torch_imle.py"
    };
    let output = std::process::Command::new(&python)
        .arg(script)
        .arg("--json")
        .args(extra_args)
        .output();
    let mut rows = BTreeMap::new();
    let Ok(output) = output.as_ref() else {
        eprintln!("PyTorch reference: cannot run {python}; its column stays empty");
        return rows;
    };
    if !output.status.success() {
        // Its last lines say why (no torch, no GPU, a bug): a GPU run must not lose that.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(8)..].join("\n  ");
        eprintln!(
            "PyTorch reference: {python} {script} failed (torch installed?); its column stays \
             empty. Its stderr ends:\n  {tail}"
        );
        return rows;
    }
    // A flat {"key": {"median": m, "min": n, "unit": u}, ...} object: read it by hand.
    let text = String::from_utf8_lossy(&output.stdout);
    for entry in text
        .trim()
        .trim_matches(|c| c == '{' || c == '}')
        .split("}, ")
    {
        let Some((key, body)) = entry.split_once(": {") else {
            continue;
        };
        let number = |name: &str| -> Option<f64> {
            let start = body.find(&format!("\"{name}\": "))? + name.len() + 4;
            body[start..].split([',', '}']).next()?.trim().parse().ok()
        };
        if let (Some(median), Some(min)) = (number("median"), number("min")) {
            rows.insert(key.trim_matches('"').to_string(), (median, min));
        }
    }
    rows
}
