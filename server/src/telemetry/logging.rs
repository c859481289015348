//! Log lines on stderr: text for people (coloured only on a terminal), or one JSON object per line
//! for a collector. `RUST_LOG` chooses what is logged, as everywhere in Rust.

use std::io::IsTerminal;

use clap::Args;
use tracing_subscriber::EnvFilter;

/// What `RUST_LOG` is when unset: Herald's own lines at INFO, and no line per applied migration.
const DEFAULT_FILTER: &str = "info,sea_orm_migration=warn";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// `text` (for people) or `json` (one object per line, for a log collector).
    #[arg(
        long = "log-format",
        env = "HERALD_LOG_FORMAT",
        default_value = "text",
        global = true,
        value_parser = parse_format
    )]
    pub format: LogFormat,
}

fn parse_format(s: &str) -> Result<LogFormat, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("HERALD_LOG_FORMAT (--log-format) must be `text` or `json`".into()),
    }
}

/// Installs the process's subscriber. In JSON an event's fields sit at the top level beside
/// `timestamp`, `level`, `target` and `message`; the span it happened in, if any, is under
/// `span` (its fields flattened into that object).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            // Escape codes make a file or a collector's view unreadable.
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_format_is_refused_with_the_variable_named() {
        assert_eq!(parse_format("json"), Ok(LogFormat::Json));
        assert_eq!(parse_format("TEXT"), Ok(LogFormat::Text));
        assert!(
            parse_format("xml")
                .unwrap_err()
                .contains("HERALD_LOG_FORMAT")
        );
    }
}
