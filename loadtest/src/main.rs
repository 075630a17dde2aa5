//! `ringcast-loadtest`: an open-loop load generator for Pusher-protocol servers, measured per
//! `shared/specs/performance.md` §3. This file owns only process start-up: parse flags,
//! resolve the plan, then run as the coordinator or (with the hidden `--worker-index`) as one
//! subscriber worker.

mod churn;
mod cli;
mod coordinator;
mod plot;
mod presence;
mod proc_reading;
mod profile;
mod publisher;
mod report;
mod rx;
mod stats;
mod worker;
mod ws_client;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = cli::Args::parse();
    let plan = match profile::Plan::resolve(&args) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("ringcast-loadtest: {e}");
            std::process::exit(2);
        }
    };
    let outcome = match args.worker_index {
        Some(index) => worker::run(plan, index),
        None => coordinate(&args, plan),
    };
    if let Err(e) = outcome {
        eprintln!("ringcast-loadtest: {e}");
        std::process::exit(1);
    }
}

fn coordinate(args: &cli::Args, plan: profile::Plan) -> Result<(), String> {
    if plan.scenario == profile::Scenario::Churn {
        let (result, hist) = churn::run(plan)?;
        print!("{}", churn::summary(&result));
        return write_plain(&args.out, &result, &hist);
    }
    if plan.scenario == profile::Scenario::Presence {
        let (result, hist) = presence::run(plan)?;
        print!("{}", presence::summary(&result));
        return write_plain(&args.out, &result, &hist);
    }
    let (result, hist) = coordinator::run(plan, args.server_pid)?;
    print!("{}", report::summary(&result));
    report::write_files(&args.out, &result, &hist)?;
    println!(
        "wrote {} and {}",
        args.out.join("result.json").display(),
        args.out.join("latency.hgrm").display()
    );
    Ok(())
}

/// Writes `result.json` and `latency.hgrm` for the scenarios that run in the coordinator.
fn write_plain<T: serde::Serialize>(
    dir: &std::path::Path,
    result: &T,
    hist: &hdrhistogram::Histogram<u64>,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let json = serde_json::to_string_pretty(result).map_err(|e| format!("result JSON: {e}"))?;
    for (name, text) in [("result.json", json), ("latency.hgrm", report::hgrm(hist))] {
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
