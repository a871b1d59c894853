//! Writing an assessment out: `assessment.json` (the whole of it, read back by `diff`),
//! `findings.csv` (one row per finding, with its stable id), `report.html` (one
//! self-contained file: no script, nothing fetched) and, on request, `report.pdf`
//! printed from that HTML by headless Chromium or Edge.
//!
//! Each file is written to a temporary name, flushed to disk and renamed into place; an
//! existing file is replaced only when the caller says so.

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

/// Write the files into `dir` (made if missing): JSON, CSV and HTML, and the PDF when
/// `pdf`. Returns the paths written.
///
/// # Errors
/// A file exists and `overwrite` is off (nothing is written then); the folder cannot be
/// written; no browser to print the PDF, or it failed.
pub fn write(a: &Assessment, dir: &Path, pdf: bool, overwrite: bool) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ApiError::new(Code::Io, format!("cannot make {}: {e}", dir.display())))?;
    let mut names = vec![JSON, CSV, HTML];
    if pdf {
        names.push(PDF);
    }
    if !overwrite {
        let there: Vec<String> = names
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
    let json = serde_json::to_vec_pretty(a)
        .map_err(|e| ApiError::new(Code::Io, format!("assessment as JSON: {e}")))?;
    let mut out = Vec::new();
    for (name, bytes) in [
        (JSON, json),
        (CSV, csv(a)?),
        (HTML, super::html::render(a).into_bytes()),
    ] {
        let p = dir.join(name);
        put(&p, &bytes)?;
        out.push(p);
    }
    if pdf {
        let p = dir.join(PDF);
        print_pdf(&dir.join(HTML), &p)?;
        out.push(p);
    }
    Ok(out)
}

/// Write through a temporary file in the same folder: flush, fsync, rename.
fn put(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| ApiError::new(Code::Io, format!("{}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
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

/// Print `html` to `pdf` with a headless browser, through a temporary file renamed into
/// place once the browser has finished.
///
/// # Errors
/// No browser, the browser failed or took longer than two minutes.
pub fn print_pdf(html: &Path, pdf: &Path) -> Result<()> {
    let Some(bin) = browser() else {
        return Err(ApiError::new(
            Code::InvalidInput,
            "a PDF is printed by Chromium, Chrome or Edge, and none was found: install one (Debian: apt install chromium) or set REHYDRA_BROWSER to its program; the HTML report is written",
        ));
    };
    let io = |what: &str, e: std::io::Error| ApiError::new(Code::Io, format!("{what}: {e}"));
    let dir = pdf.parent().unwrap_or(Path::new("."));
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
    tmp.persist(pdf).map_err(|e| io("the PDF", e.error))?;
    Ok(())
}
