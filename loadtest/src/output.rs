//! What a run writes into its `--out` directory: `result.json` and `latency.hgrm` for every
//! scenario ([`write_plain`] for churn and presence), plus the SVG plots of [`crate::plot`]
//! for a fan-out run ([`write_files`]).

use std::path::Path;

use hdrhistogram::Histogram;

use crate::plot::write_svgs;
use crate::report::{hgrm, RunResult};

/// Writes `result.json`, `latency.hgrm`, `latency.svg` and `timeline.svg` into `dir`
/// (created if missing).
pub fn write_files(dir: &Path, r: &RunResult, h: &Histogram<u64>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let json = serde_json::to_string_pretty(r).map_err(|e| format!("result JSON: {e}"))?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write("result.json", &json)?;
    write("latency.hgrm", &hgrm(h))?;
    write_svgs(dir, r, h)
}

/// Writes `result.json` and `latency.hgrm` for the scenarios that run in the coordinator.
pub fn write_plain<T: serde::Serialize>(
    dir: &Path,
    result: &T,
    hist: &Histogram<u64>,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let json = serde_json::to_string_pretty(result).map_err(|e| format!("result JSON: {e}"))?;
    for (name, text) in [("result.json", json), ("latency.hgrm", hgrm(hist))] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!(
        "wrote {} and {}",
        dir.join("result.json").display(),
        dir.join("latency.hgrm").display()
    );
    Ok(())
}
