//! The connection to a SQL Server instance, metered: what the instance sends on one
//! connection (its sign-in and one batch's answer, see `sql.rs`) is counted as it
//! arrives, and past a limit the connection fails before more is read; so is what all
//! the connections open at once have read, against a limit of their own.
//!
//! The answer cap (`ANSWER_BYTES_MAX`) counts values once the driver has decoded them,
//! and the driver holds a whole value before it hands it over: without this, a hostile
//! instance could have the host hold one value of up to 2 GiB (the driver's own limit)
//! before any cap was checked. Counted on the wire, no value arrives larger than the
//! limit; decoding it may still take a few times that (text of a single-byte code page
//! becomes up to three bytes a character) before the answer cap refuses it, which is why
//! the connections open at once (calls given up on and still ending among them) share a
//! limit too.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the connections open at once have read, together.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Why a connection was cut off, in its [`Cut`] flag.
pub(super) const CUT_CONNECTION: u8 = 1;
/// ... because the connections open at once read more than their shared limit.
pub(super) const CUT_ALL: u8 = 2;
/// Why the connection was cut off (`0`: it was not).
pub(super) type Cut = Arc<AtomicU8>;

/// A TCP connection that fails a read once more than its limit has been read on it, or
/// than `shared` on all of them while it has read more than a sixteenth of its limit, and
/// says which in its flag (the driver's error then names the cut, not the cause).
pub(super) struct Metered {
    tcp: TcpStream,
    read: usize,
    limit: usize,
    shared: usize,
    cut: Cut,
}

impl Metered {
    /// `tcp`, taking at most `limit` bytes, and none once the connections open read
    /// `shared` together (give or take one read each).
    pub(super) fn new(tcp: TcpStream, limit: usize, shared: usize) -> (Self, Cut) {
        let cut = Cut::default();
        let metered = Self {
            tcp,
            read: 0,
            limit,
            shared,
            cut: cut.clone(),
        };
        (metered, cut)
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        LIVE.fetch_sub(self.read, Ordering::SeqCst);
    }
}

impl AsyncRead for Metered {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut.load(Ordering::SeqCst) != 0 {
            return Poll::Ready(Err(cut()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.tcp).poll_read(cx, buf))?;
        let n = buf.filled().len() - before;
        this.read += n;
        let live = LIVE.fetch_add(n, Ordering::SeqCst) + n;
        // over the shared limit, a connection that has read little (a sign-in, a short
        // answer) goes on: the ones reading much are cut
        let why = if this.read > this.limit {
            CUT_CONNECTION
        } else if live > this.shared && this.read > this.limit / 16 {
            CUT_ALL
        } else {
            return Poll::Ready(Ok(()));
        };
        // what this read brought is not handed over
        buf.set_filled(before);
        this.cut.store(why, Ordering::SeqCst);
        Poll::Ready(Err(cut()))
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
            let (mut m, cut) = Metered::new(
                TcpStream::connect(at).await.unwrap(),
                200_000,
                usize::MAX >> 1,
            );
            let mut got = Vec::new();
            let e = m.read_to_end(&mut got).await.unwrap_err();
            assert!(e.to_string().contains("more than the host takes"), "{e}");
            assert_eq!(cut.load(Ordering::SeqCst), CUT_CONNECTION);
            // what came before the cut is all that was kept, and it was under the limit
            assert!(got.len() <= 200_000, "{}", got.len());
            // and nothing more is read after it
            assert!(m.read(&mut [0u8; 16]).await.is_err());
            sender.abort();
            drop(m);

            // under the limit, everything arrives and the flag stays down
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let at = listener.local_addr().unwrap();
            tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                s.write_all(&[1u8; 150_000]).await.unwrap();
            });
            let (mut m, cut) = Metered::new(
                TcpStream::connect(at).await.unwrap(),
                200_000,
                usize::MAX >> 1,
            );
            let mut got = Vec::new();
            m.read_to_end(&mut got).await.unwrap();
            assert_eq!(got.len(), 150_000);
            assert_eq!(cut.load(Ordering::SeqCst), 0);
            drop(m);
            // (nothing else in this process opens one: none is open now)
            assert_eq!(LIVE.load(Ordering::SeqCst), 0);

            // two connections, each under its own limit, over the shared one together:
            // the second is cut; once the first is gone, what it read no longer counts
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let at = listener.local_addr().unwrap();
            tokio::spawn(async move {
                for _ in 0..4 {
                    let (mut s, _) = listener.accept().await.unwrap();
                    tokio::spawn(async move {
                        let _ = s.write_all(&[2u8; 150_000]).await;
                    });
                }
            });
            let open =
                |_| async { Metered::new(TcpStream::connect(at).await.unwrap(), 200_000, 250_000) };
            let (mut first, first_cut) = open(()).await;
            first.read_to_end(&mut Vec::new()).await.unwrap();
            let (mut second, second_cut) = open(()).await;
            assert!(second.read_to_end(&mut Vec::new()).await.is_err());
            assert_eq!(first_cut.load(Ordering::SeqCst), 0);
            assert_eq!(second_cut.load(Ordering::SeqCst), CUT_ALL);
            // over the shared limit still, one that has read little (under a sixteenth of
            // its own limit) goes on
            let (mut small, small_cut) = open(()).await;
            let mut got = vec![0u8; 10_000];
            small.read_exact(&mut got).await.unwrap();
            assert_eq!(small_cut.load(Ordering::SeqCst), 0);
            drop(small);
            drop((first, second));
            let (mut third, third_cut) = open(()).await;
            third.read_to_end(&mut Vec::new()).await.unwrap();
            assert_eq!(third_cut.load(Ordering::SeqCst), 0);
            drop(third);
            assert_eq!(LIVE.load(Ordering::SeqCst), 0);
        });
    }
}
