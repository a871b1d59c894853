//! Writing an assessment out: `assessment.json` (the whole of it, read back by `diff`),
//! `findings.csv` (one row per finding, with its stable id), `report.html` (one
//! self-contained file: no script, nothing fetched) and, on request, `report.pdf`
//! printed from that HTML by headless Chromium or Edge.
//!
//! Every file is made under a temporary name and flushed to disk, and all are renamed into
//! place once all are made; an existing file is replaced only when the caller says so.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Assessment;
use crate::error::{ApiError, Code, Result};

/// File names in the output folder.
pub const JSON: &str = "assessment.json";
/// The findings as CSV.
pub const CSV: &str = "findings.csv";
/// The report.
pub const HTML: &str = "report.html";
/// The report as PDF.
pub const PDF: &str = "report.pdf";

/// How long the browser may take to print the PDF.
const PRINT_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether the files can be written into `dir`, checked before the sweep so that a long
/// sweep does not end in a refusal: without `overwrite`, none of the four names may
/// exist (a `report.pdf` of another assessment would otherwise sit next to the new
/// report); with `pdf`, a browser must be found.
///
/// # Errors
/// A file exists and `overwrite` is off; `dir` is not a folder; no browser for the PDF.
pub fn check(dir: &Path, pdf: bool, overwrite: bool) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!("{} is not a folder", dir.display()),
        ));
    }
    if !overwrite {
        let there: Vec<String> = [JSON, CSV, HTML, PDF]
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| p.symlink_metadata().is_ok())
            .map(|p| p.display().to_string())
            .collect();
        if !there.is_empty() {
            return Err(ApiError::new(
                Code::TargetExists,
                format!(
                    "{} already exist(s); choose another folder, or replace them with --overwrite",
                    there.join(", ")
                ),
            ));
        }
    }
    if pdf && browser().is_none() {
        return Err(no_browser());
    }
    Ok(())
}

fn no_browser() -> ApiError {
    ApiError::new(
        Code::InvalidInput,
        "a PDF is printed by Chromium, Chrome or Edge, and none was found: install one (Debian: apt install chromium), set REHYDRA_BROWSER to its program, or leave out the PDF",
    )
}

/// Write the files into `dir` (made if missing): JSON, CSV and HTML, and the PDF when
/// `pdf`. Every file is made under a temporary name first and renamed into place only
/// once all of them (the PDF included) are made, so a failure leaves what was there. With
/// `overwrite` and no `pdf`, a `report.pdf` already there (of another assessment) is
/// removed. Returns the paths written.
///
/// # Errors
/// As [`check`]; the folder cannot be written; the browser failed.
pub fn write(a: &Assessment, dir: &Path, pdf: bool, overwrite: bool) -> Result<Vec<PathBuf>> {
    check(dir, pdf, overwrite)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| ApiError::new(Code::Io, format!("cannot make {}: {e}", dir.display())))?;
    let json = serde_json::to_vec_pretty(a)
        .map_err(|e| ApiError::new(Code::Io, format!("assessment as JSON: {e}")))?;
    let mut made = Vec::new();
    for (name, suffix, bytes) in [
        (JSON, ".json", json),
        (CSV, ".csv", csv(a)?),
        (HTML, ".html", super::html::render(a).into_bytes()),
    ] {
        made.push((name, staged(dir, suffix, &bytes)?));
    }
    if pdf {
        let printed = print_to_temp(made[2].1.path(), dir)?;
        made.push((PDF, printed));
    } else if overwrite {
        let stale = dir.join(PDF);
        if stale.symlink_metadata().is_ok() {
            std::fs::remove_file(&stale)
                .map_err(|e| ApiError::new(Code::Io, format!("{}: {e}", stale.display())))?;
        }
    }
    let mut out = Vec::new();
    for (name, tmp) in made {
        let p = dir.join(name);
        // without consent, a file that appeared since the check is not replaced either
        let r = if overwrite {
            tmp.persist(&p)
        } else {
            tmp.persist_noclobber(&p)
        };
        r.map_err(|e| ApiError::new(Code::Io, format!("{}: {}", p.display(), e.error)))?;
        out.push(p);
    }
    Ok(out)
}

/// A temporary file in `dir` holding `bytes`, flushed to disk.
fn staged(dir: &Path, suffix: &str, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let io = |e: std::io::Error| ApiError::new(Code::Io, format!("{}: {e}", dir.display()));
    let mut tmp = tempfile::Builder::new()
        .prefix(".report-")
        .suffix(suffix)
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    Ok(tmp)
}

/// A spreadsheet takes a cell starting with `=`, `+`, `-`, `@` (or a tab or carriage
/// return before one) as a formula: such cells get a leading `'`. Names come from the
/// estate, and the estate is not trusted.
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// The findings as CSV, with a header row.
///
/// # Errors
/// Never in practice (writing to memory).
pub fn csv(a: &Assessment) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let e = |e: csv::Error| ApiError::new(Code::Io, format!("findings as CSV: {e}"));
    w.write_record([
        "id",
        "severity",
        "rule",
        "source",
        "asset",
        "asset_name",
        "title",
        "evidence",
        "recommendation",
    ])
    .map_err(e)?;
    for f in &a.findings {
        w.write_record([
            cell(&f.id),
            f.severity.clone(),
            cell(&f.rule),
            cell(&f.source),
            cell(f.asset.as_deref().unwrap_or("")),
            cell(f.asset_name.as_deref().unwrap_or("")),
            cell(&f.title),
            cell(&f.evidence),
            cell(&f.recommendation),
        ])
        .map_err(e)?;
    }
    w.into_inner()
        .map_err(|x| ApiError::new(Code::Io, format!("findings as CSV: {x}")))
}

/// The browser that prints PDFs: `REHYDRA_BROWSER`, else Chromium, Chrome or Edge found
/// on the `PATH` (and Edge where Windows installs it).
pub fn browser() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REHYDRA_BROWSER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
        "microsoft-edge",
        "msedge",
    ];
    let exe = if cfg!(windows) { ".exe" } else { "" };
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for d in &on_path {
        for n in names {
            let p = d.join(format!("{n}{exe}"));
            if p.is_file() {
                return Some(p);
            }
        }
    }
    if cfg!(windows) {
        for var in ["ProgramFiles(x86)", "ProgramFiles"] {
            if let Some(pf) = std::env::var_os(var) {
                let p = PathBuf::from(pf).join(r"Microsoft\Edge\Application\msedge.exe");
                if p.is_file() {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// Running as root (Chromium's sandbox refuses to start then, and needs to be told).
fn as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// Print `html` with a headless browser into a temporary PDF in `dir`. The browser gets
/// a fresh profile, no background networking, and no sandbox only when run as root.
///
/// # Errors
/// No browser, the browser failed or took longer than two minutes.
fn print_to_temp(html: &Path, dir: &Path) -> Result<tempfile::NamedTempFile> {
    let Some(bin) = browser() else {
        return Err(no_browser());
    };
    let io = |what: &str, e: std::io::Error| ApiError::new(Code::Io, format!("{what}: {e}"));
    let profile = tempfile::tempdir().map_err(|e| io("a browser profile folder", e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".report-")
        .suffix(".pdf")
        .tempfile_in(dir)
        .map_err(|e| io("a temporary PDF", e))?;
    let html = std::path::absolute(html).map_err(|e| io("the report's path", e))?;
    let url = url::Url::from_file_path(&html).map_err(|()| {
        ApiError::new(
            Code::InvalidInput,
            format!("{} cannot be opened as a file URL", html.display()),
        )
    })?;
    // its chatter goes to a file: a pipe nobody reads while it runs could fill and stall it
    let errors = tempfile::tempfile_in(profile.path()).map_err(|e| io("a log file", e))?;
    let mut cmd = Command::new(&bin);
    cmd.args([
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--no-pdf-header-footer",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--print-to-pdf={}", tmp.path().display()))
    .arg(url.as_str())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::from(
        errors
            .try_clone()
            .map_err(|e| io("the browser's error output", e))?,
    ));
    if as_root() {
        cmd.arg("--no-sandbox");
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| io(&format!("starting {}", bin.display()), e))?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .map_err(|e| io("waiting for the browser", e))?
        {
            break s;
        }
        if start.elapsed() > PRINT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ApiError::new(
                Code::Io,
                format!(
                    "{} did not print the PDF within {} s",
                    bin.display(),
                    PRINT_TIMEOUT.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    {
        use std::io::{Read as _, Seek as _};
        let mut e = errors;
        let _ = e.seek(std::io::SeekFrom::Start(0));
        let _ = e.take(1 << 20).read_to_string(&mut err);
    }
    let printed = tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
    if !status.success() || printed == 0 {
        let last: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(ApiError::new(
            Code::Io,
            format!(
                "{} did not print the PDF ({status}): {}",
                bin.display(),
                last.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ),
        ));
    }
    tmp.as_file().sync_all().map_err(|e| io("the PDF", e))?;
    Ok(tmp)
}
