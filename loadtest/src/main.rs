//! `ringcast-loadtest`: an open-loop load generator for Pusher-protocol servers, measured per
//! `shared/specs/performance.md` §3. This file owns only process start-up: parse flags,
//! resolve the plan, then run as the coordinator or (with the hidden `--worker-index`) as one
//! subscriber worker.

mod cli;
mod coordinator;
mod plot;
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
