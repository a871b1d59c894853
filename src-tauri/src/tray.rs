//! The tray icon: the last job's result at a glance (the first line of its menu, and the
//! tooltip on Windows, where the desktop shows one), then Open and Quit. It reads the
//! catalog the app reads (the service's too, when the app was started on it) every
//! 15 s, so a run the service or another window made shows as well as the app's own.

use std::time::Duration;

use rehydra_api::{JobRun, JobStatus};
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager};

use crate::state::App;

const EVERY: Duration = Duration::from_secs(15);

/// Put the icon in the tray and keep its line up to date. A desktop without a tray (on
/// Linux, no AppIndicator library) gets none: the error is returned for the log, the app
/// runs on.
///
/// # Errors
/// The tray or its menu could not be made.
pub fn install(app: &AppHandle) -> tauri::Result<()> {
    let last = MenuItem::with_id(app, "last", line(None), false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Rehydra", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Rehydra", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&last, &open, &quit])?;
    let mut tray = TrayIconBuilder::with_id("rehydra")
        .menu(&menu)
        .tooltip("Rehydra")
        .on_menu_event(|app, e| match e.id().as_ref() {
            "open" => {
                if let Some(w) = app.get_webview_window("main") {
                    let _ = w.unminimize();
                    let _ = w.show();
                    let _ = w.set_focus();
                }
            }
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    let tray = tray.build(app)?;
    let app = app.clone();
    std::thread::spawn(move || {
        let mut shown = String::new();
        loop {
            let runs = rehydra_api::job_runs(&app.state::<App>().ctx, 20).unwrap_or_default();
            let now = line(last_finished(&runs));
            if now != shown {
                let _ = last.set_text(&now);
                // (Windows keeps 127 characters of a tooltip)
                let tip: String = format!("Rehydra: {}", now.replace("&&", "&"))
                    .chars()
                    .take(120)
                    .collect();
                let _ = tray.set_tooltip(Some(tip));
                shown = now;
            }
            std::thread::sleep(EVERY);
        }
    });
    Ok(())
}

/// The run that finished last (not the last one started: a long run that fails after a
/// shorter one succeeded is the news).
fn last_finished(runs: &[JobRun]) -> Option<&JobRun> {
    runs.iter()
        .filter(|r| r.status != JobStatus::Running)
        .max_by_key(|r| finished_at(r))
}

fn finished_at(r: &JobRun) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(r.finished.as_deref()?).ok()
}

/// `text` as a menu label shows it: no control or direction-changing characters (a job's
/// kind and message may quote a plugin or a server), `&` doubled (a menu's mnemonic
/// marker otherwise), at most `max` characters.
fn label(text: &str, max: usize) -> String {
    let bidi = |c: char| matches!(c, '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}');
    text.chars()
        .filter(|c| !c.is_control() && !bidi(*c))
        .take(max)
        .flat_map(|c| if c == '&' { vec!['&', '&'] } else { vec![c] })
        .collect()
}

/// What the tray says of the last finished run: one line, read at a glance.
fn line(run: Option<&JobRun>) -> String {
    let Some(r) = run else {
        return "No job has run yet".into();
    };
    let when = finished_at(r)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|| "at an unknown time".into());
    let outcome = match r.status {
        JobStatus::Succeeded => "succeeded",
        JobStatus::SucceededWithWarnings => "succeeded with warnings",
        JobStatus::Failed => "FAILED",
        JobStatus::Cancelled => "was cancelled",
        JobStatus::Running | JobStatus::Unknown => "ended",
    };
    let mut s = format!("Last {}: {outcome}, {when}", label(&r.kind, 40));
    if r.status == JobStatus::Failed && !r.message.is_empty() {
        // the first line of the reason, short enough for a menu
        let why = label(r.message.lines().next().unwrap_or(""), 80);
        s.push_str(&format!(" ({why})"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: JobStatus, message: &str) -> JobRun {
        JobRun {
            id: 1,
            repository_id: None,
            kind: "policy nightly".into(),
            started: "2026-12-04T01:59:00+00:00".into(),
            finished: Some("2026-12-04T02:00:07.5+00:00".into()),
            status,
            message: message.into(),
            restore_point_id: None,
            bytes: 0,
        }
    }

    #[test]
    fn the_tray_line_says_the_outcome_and_when_and_a_failure_why() {
        assert_eq!(line(None), "No job has run yet");
        let ok = line(Some(&run(JobStatus::Succeeded, "")));
        assert!(
            ok.starts_with("Last policy nightly: succeeded, 2026-12-0"),
            "{ok}"
        );
        let long = format!(
            "repository\u{1b}[31m unreachable: {}\nsecond line",
            "x".repeat(200)
        );
        let failed = line(Some(&run(JobStatus::Failed, &long)));
        assert!(
            failed.contains("FAILED") && failed.contains("(repository[31m unreachable: xx"),
            "{failed}"
        );
        assert!(
            !failed.contains("second line") && failed.chars().count() < 140,
            "{failed}"
        );
        assert_eq!(label("a&b\u{202e}cd\u{7}e", 80), "a&&bcde");
        // the run that finished last, not the last one started
        let mut early = run(JobStatus::Succeeded, "");
        early.id = 2;
        let mut late = run(JobStatus::Failed, "disk full");
        late.finished = Some("2026-12-04T03:00:00+00:00".into());
        let running = JobRun {
            id: 3,
            finished: None,
            ..run(JobStatus::Running, "")
        };
        let runs = [running, early, late];
        assert_eq!(
            last_finished(&runs).map(|r| r.status),
            Some(JobStatus::Failed)
        );
        let mut odd = run(JobStatus::Cancelled, "");
        odd.finished = Some("yesterday".into());
        assert_eq!(
            line(Some(&odd)),
            "Last policy nightly: was cancelled, at an unknown time"
        );
    }
}
