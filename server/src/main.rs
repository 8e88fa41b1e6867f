//! The `bothy` binary: parse the command line, start logging, run the server until SIGTERM or
//! Ctrl-C.

use bothy_server::config::{Cli, Command, ReportArgs, ServeArgs};
use bothy_server::report;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// `BOTHY_LOG` (default `info`), except that the WebSocket library never logs at `trace`: there
/// it writes out every message whole, identity tokens and facilitator secrets included.
fn log_filter() -> EnvFilter {
    let filter = EnvFilter::try_from_env("BOTHY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if filter.max_level_hint() == Some(tracing_subscriber::filter::LevelFilter::TRACE) {
        filter.add_directive("tungstenite=debug".parse().expect("a valid directive"))
    } else {
        filter
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = match cli.command {
        Some(Command::Serve(args)) => *args,
        Some(Command::Report(args)) => return report(&args),
        Some(Command::Purge(args)) => {
            return bothy_server::retention::purge_command(&args.data_dir, &args.event);
        }
        None => ServeArgs::default(),
    };
    let runtime = tokio::runtime::Runtime::new().expect("the async runtime starts");
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bothy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `bothy report`: read and check the snapshot, write the report. Exit code 2 (and a message on
/// stderr) for a file that cannot be used, 1 when the report cannot be written.
fn report(args: &ReportArgs) -> std::process::ExitCode {
    use std::io::{Read, Write};
    let path = args.snapshot.display();
    let read = std::fs::File::open(&args.snapshot)
        .and_then(|f| Ok((f.metadata()?.len(), f)))
        .map_err(|e| format!("cannot read the file: {e}"))
        .and_then(|(len, f)| {
            // Refuse a file that says it is too large before reading any of it.
            if len > report::MAX_SNAPSHOT_BYTES {
                return Err(report::too_large());
            }
            let mut bytes = Vec::new();
            // It may have grown since: one byte over the limit is enough to refuse it.
            f.take(report::MAX_SNAPSHOT_BYTES + 1)
                .read_to_end(&mut bytes)
                .map(|_| bytes)
                .map_err(|e| format!("cannot read the file: {e}"))
        });
    let snapshot = match read.and_then(|bytes| report::parse_snapshot(&bytes)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bothy report: {path}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let options = report::ReportOptions {
        quote_all: args.quote_all,
    };
    let text = report::render(&snapshot, args.format, &options);
    let written = match &args.output {
        Some(file) => std::fs::write(file, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", file.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write the report: {e}"))
        }
    };
    match written {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bothy report: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = args.to_config();
    let listener = bothy_server::listen(args.bind)
        .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find the port.
    println!("Bothy is running. Open http://{addr}/ in your browser.");
    println!("Saving boards in {}", config.data_dir.display());
    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    bothy_server::serve(listener, config, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: closing connections and saving rooms");
    shutdown.cancel();
}
