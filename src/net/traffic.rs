//! Bytes each peer's connections carried, for `peers` (bytes in and out): every
//! substream of a direct TCP connection is counted as yamux hands it over, so the figures
//! are the peer's protocol bytes (sync, gossip, Kademlia, identify, ping) without the
//! noise and yamux framing. A relayed connection is not counted (its bytes pass through
//! the relay's own connection, counted under the relay).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use futures::{AsyncRead, AsyncWrite};
use libp2p::PeerId;
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};

/// Bytes sent to and received from one peer over its current connections.
#[derive(Debug, Default)]
pub struct Counter {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Counter {
    /// (sent, received) so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.sent.load(Ordering::Relaxed), self.received.load(Ordering::Relaxed))
    }
}

/// The counters of the connected peers, shared by the transport (which counts) and the
/// network task (which shows them and forgets a peer when its last connection closes).
#[derive(Debug, Clone, Default)]
pub struct Traffic(Arc<Mutex<HashMap<PeerId, Arc<Counter>>>>);

impl Traffic {
    /// `peer`'s counter, made on its first connection.
    pub fn counter(&self, peer: PeerId) -> Arc<Counter> {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(peer).or_default().clone()
    }

    /// (sent, received) of `peer` since it connected.
    pub fn totals(&self, peer: &PeerId) -> (u64, u64) {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(peer).map_or((0, 0), |c| c.totals())
    }

    /// `peer` has no connection left: its count starts again if it comes back.
    pub fn forget(&self, peer: &PeerId) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(peer);
    }
}

/// A muxer whose substreams count their bytes into one peer's [`Counter`].
pub struct Counted<M> {
    inner: M,
    counter: Arc<Counter>,
}

impl<M> Counted<M> {
    /// `inner`, counting into `counter`.
    pub fn new(inner: M, counter: Arc<Counter>) -> Self {
        Self { inner, counter }
    }
}

impl<M> StreamMuxer for Counted<M>
where
    M: StreamMuxer + Unpin,
    M::Substream: Unpin,
{
    type Substream = CountedStream<M::Substream>;
    type Error = M::Error;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        let inner = ready!(Pin::new(&mut this.inner).poll_inbound(cx))?;
        Poll::Ready(Ok(CountedStream { inner, counter: this.counter.clone() }))
    }

    fn poll_outbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        let inner = ready!(Pin::new(&mut this.inner).poll_outbound(cx))?;
        Poll::Ready(Ok(CountedStream { inner, counter: this.counter.clone() }))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        Pin::new(&mut self.get_mut().inner).poll(cx)
    }
}

/// A substream that counts what it reads and writes.
pub struct CountedStream<S> {
    inner: S,
    counter: Arc<Counter>,
}

impl<S: AsyncRead + Unpin> AsyncRead for CountedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.counter.received.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.counter.sent.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn a_substream_counts_what_it_reads_and_writes_into_its_peers_counter() {
        let traffic = Traffic::default();
        let peer = PeerId::random();
        let mut s = CountedStream {
            inner: futures::io::Cursor::new(vec![7u8; 10]),
            counter: traffic.counter(peer),
        };
        futures::executor::block_on(async {
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(b"hello").await.unwrap();
        });
        assert_eq!(traffic.totals(&peer), (5, 4));
        traffic.forget(&peer);
        assert_eq!(traffic.totals(&peer), (0, 0), "a peer that comes back starts at 0");
    }
}
