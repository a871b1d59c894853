//! Engine progress → a Tauri channel, at most ten events a second, with throughput and ETA.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rehydra_api::Progress;
use serde::Serialize;
use tauri::ipc::Channel;

/// One progress event.
#[derive(Clone, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "Progress")]
pub struct ProgressEvent {
    pub phase: String,
    pub done: u64,
    pub total: u64,
    pub bytes_per_sec: f64,
    pub eta_seconds: Option<f64>,
    pub message: String,
    pub finished: bool,
}

struct Inner {
    phase: String,
    total: u64,
    done: u64,
    message: String,
    started: Instant,
    sent: Option<Instant>,
}

/// A `Progress` that reports to the UI.
pub struct ChannelProgress {
    ch: Channel<ProgressEvent>,
    inner: Mutex<Inner>,
}

impl ChannelProgress {
    pub fn new(ch: Channel<ProgressEvent>) -> Self {
        Self {
            ch,
            inner: Mutex::new(Inner {
                phase: String::new(),
                total: 0,
                done: 0,
                message: String::new(),
                started: Instant::now(),
                sent: None,
            }),
        }
    }

    fn send(&self, force: bool, finished: bool) {
        let Ok(mut i) = self.inner.lock() else { return };
        if !force
            && i.sent
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        i.sent = Some(Instant::now());
        let secs = i.started.elapsed().as_secs_f64().max(1e-3);
        let rate = i.done as f64 / secs;
        let eta = (i.total > i.done && rate > 0.0).then(|| (i.total - i.done) as f64 / rate);
        let _ = self.ch.send(ProgressEvent {
            phase: i.phase.clone(),
            done: i.done,
            total: i.total,
            bytes_per_sec: rate,
            eta_seconds: eta,
            message: i.message.clone(),
            finished,
        });
    }
}

impl Progress for ChannelProgress {
    fn start(&self, phase: &str, total: u64) {
        if let Ok(mut i) = self.inner.lock() {
            i.phase = phase.to_string();
            i.total = total;
            i.done = 0;
            i.started = Instant::now();
        }
        self.send(true, false);
    }
    fn inc(&self, bytes: u64) {
        if let Ok(mut i) = self.inner.lock() {
            i.done += bytes;
        }
        self.send(false, false);
    }
    fn message(&self, msg: &str) {
        if let Ok(mut i) = self.inner.lock() {
            i.message = msg.to_string();
        }
        self.send(false, false);
    }
    fn finish(&self) {
        self.send(true, true);
    }
}
