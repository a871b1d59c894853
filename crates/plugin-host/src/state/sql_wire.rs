//! The connection to a SQL Server instance, metered: what the instance sends on one
//! connection (its sign-in and one batch's answer, see `sql.rs`) is counted as it
//! arrives, and past a limit the connection fails before more is read.
//!
//! The answer cap (`ANSWER_BYTES_MAX`) counts values once the driver has decoded them,
//! and the driver holds a whole value before it hands it over: without this, a hostile
//! instance could have the host hold one value of up to 2 GiB (the driver's own limit)
//! before any cap was checked. Counted on the wire, no value grows past the limit.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP connection that fails a read once more than its limit has been read, and says
/// so in its flag (the driver's error then names the cut, not the cause).
pub(super) struct Metered {
    tcp: TcpStream,
    read: usize,
    limit: usize,
    over: Arc<AtomicBool>,
}

impl Metered {
    /// `tcp`, taking at most `limit` bytes (give or take one read); the flag is set once
    /// it was cut off.
    pub(super) fn new(tcp: TcpStream, limit: usize) -> (Self, Arc<AtomicBool>) {
        let over = Arc::new(AtomicBool::new(false));
        let metered = Self {
            tcp,
            read: 0,
            limit,
            over: over.clone(),
        };
        (metered, over)
    }
}

impl AsyncRead for Metered {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read > this.limit {
            return Poll::Ready(Err(cut()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.tcp).poll_read(cx, buf))?;
        this.read += buf.filled().len() - before;
        if this.read > this.limit {
            // what this read brought is not handed over
            buf.set_filled(before);
            this.over.store(true, Ordering::SeqCst);
            return Poll::Ready(Err(cut()));
        }
        Poll::Ready(Ok(()))
    }
}

fn cut() -> io::Error {
    io::Error::other("the instance sent more than the host takes for one batch")
}

impl AsyncWrite for Metered {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[test]
    fn a_connection_is_cut_once_more_than_its_limit_has_arrived() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let at = listener.local_addr().unwrap();
            let sender = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                // 1 MiB, then whatever the reader still takes
                let chunk = vec![7u8; 64 << 10];
                for _ in 0..16 {
                    if s.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            });
            let (mut m, over) = Metered::new(TcpStream::connect(at).await.unwrap(), 200_000);
            let mut got = Vec::new();
            let e = m.read_to_end(&mut got).await.unwrap_err();
            assert!(e.to_string().contains("more than the host takes"), "{e}");
            assert!(over.load(Ordering::SeqCst));
            // what came before the cut is all that was kept, and it was under the limit
            assert!(got.len() <= 200_000, "{}", got.len());
            // and nothing more is read after it
            assert!(m.read(&mut [0u8; 16]).await.is_err());
            sender.abort();

            // under the limit, everything arrives and the flag stays down
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let at = listener.local_addr().unwrap();
            tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                s.write_all(&[1u8; 150_000]).await.unwrap();
            });
            let (mut m, over) = Metered::new(TcpStream::connect(at).await.unwrap(), 200_000);
            let mut got = Vec::new();
            m.read_to_end(&mut got).await.unwrap();
            assert_eq!(got.len(), 150_000);
            assert!(!over.load(Ordering::SeqCst));
        });
    }
}
