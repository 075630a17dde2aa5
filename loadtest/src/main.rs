//! `ringcast-loadtest`: an open-loop load generator for Pusher-protocol servers. Publishers send
//! on a fixed schedule and every payload carries its intended send time, so latency is measured
//! from it and a stall shows in the tail instead of slowing the load down; native subscribers
//! record into per-thread HdrHistograms and count loss, duplicates and reordering (the method
//! and the results: `docs/performance.md`). This file owns only process start-up: parse flags,
//! resolve the plan, then run as the coordinator or (with the hidden `--worker-index`) as one
//! subscriber worker.

mod churn;
mod cli;
mod coordinator;
mod output;
mod plot;
mod presence;
mod proc_reading;
mod profile;
mod publisher;
mod report;
mod rx;
mod stats;
mod tls;
mod wire;
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
        return output::write_plain(&args.out, &result, &hist);
    }
    if plan.scenario == profile::Scenario::Presence {
        let (result, hist) = presence::run(plan)?;
        print!("{}", presence::summary(&result));
        return output::write_plain(&args.out, &result, &hist);
    }
    let (result, hist) = coordinator::run(plan, args.server_pid)?;
    print!("{}", report::summary(&result));
    output::write_files(&args.out, &result, &hist)?;
    println!(
        "wrote {} and {}",
        args.out.join("result.json").display(),
        args.out.join("latency.hgrm").display()
    );
    Ok(())
}
