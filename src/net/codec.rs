//! The sync protocol's codec: a u32 big-endian length, checked against the direction's cap
//! *before* anything is allocated, then a bincode body decoded with the same cap.
//!
//! libp2p's request-response reports nothing when a request fails to decode (the stream is
//! dropped with a debug line), so the codec never fails on a peer's bad bytes: it hands the
//! node an [`Inbound::Malformed`] request, and the node penalises the sender.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::protocol::{
    DecodeFailure, FrameError, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, SyncRequest, SyncResponse,
};

/// The request-response codec for [`SyncRequest`] / [`SyncResponse`]; it counts the
/// frame bytes it reads and writes (`minichain_p2p_bytes_total{protocol="sync"}`, and
/// `"sync_compact"` for the frames of compact block relay).
#[derive(Debug, Clone, Default)]
pub struct SyncCodec {
    bytes: super::P2pBytes,
}

impl SyncCodec {
    /// A codec that counts into `bytes`.
    pub fn counting(bytes: super::P2pBytes) -> Self {
        Self { bytes }
    }
}

/// A request as read off a stream (and as written: we only ever send `Request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A well-formed request.
    Request(SyncRequest),
    /// Bytes that are not one request; the peer is at fault.
    Malformed(FrameError),
}

impl From<FrameError> for io::Error {
    fn from(e: FrameError) -> Self {
        let kind = match e {
            FrameError::Truncated => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// Reads one frame, and says how many bytes it read. The outer error is the transport's
/// (reset, closed connection): nobody is at fault; the inner one is the peer's.
async fn read_frame<T, M>(io: &mut T, cap: usize) -> io::Result<(Result<M, FrameError>, usize)>
where
    T: AsyncRead + Unpin + Send,
    M: DeserializeOwned,
{
    let mut len = [0u8; 4];
    if let Err(e) = io.read_exact(&mut len).await {
        return eof_as_truncated(e, 0);
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > cap {
        return Ok((Err(FrameError::Oversized { len, cap }), 4));
    }
    let mut buf = vec![0u8; len];
    if let Err(e) = io.read_exact(&mut buf).await {
        return eof_as_truncated(e, 4);
    }
    Ok((decode(&buf, cap), 4 + len))
}

fn eof_as_truncated<M>(e: io::Error, read: usize) -> io::Result<(Result<M, FrameError>, usize)> {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        Ok((Err(FrameError::Truncated), read))
    } else {
        Err(e)
    }
}

/// Decodes a frame body (also used by fuzz and property tests).
///
/// # Errors
/// [`FrameError`] if the bytes are over `cap` or not one whole message.
pub fn decode<M: DeserializeOwned>(buf: &[u8], cap: usize) -> Result<M, FrameError> {
    if buf.len() > cap {
        return Err(FrameError::Oversized { len: buf.len(), cap });
    }
    // bincode's limit is checked before a string or byte vector is allocated: without
    // it a forged length (say 2^63 for a `Refused` reason) panics with capacity overflow
    // (found by the sync_response fuzz target).
    let standard = bincode::config::standard();
    let decoded = if cap <= MAX_REQUEST_BYTES {
        bincode::serde::decode_from_slice(buf, standard.with_limit::<MAX_REQUEST_BYTES>())
    } else {
        bincode::serde::decode_from_slice(buf, standard.with_limit::<MAX_RESPONSE_BYTES>())
    };
    let (msg, used): (M, usize) =
        decoded.map_err(|e| FrameError::Undecodable(DecodeFailure::Malformed(e.into())))?;
    if used != buf.len() {
        return Err(FrameError::Undecodable(DecodeFailure::TrailingBytes));
    }
    Ok(msg)
}

/// Encodes a message body.
///
/// # Errors
/// `InvalidData` if the message is over `cap` bytes.
pub fn encode<M: Serialize>(msg: &M, cap: usize) -> io::Result<Vec<u8>> {
    let body = bincode::serde::encode_to_vec(msg, bincode::config::standard())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    if body.len() > cap {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "message over the size cap"));
    }
    Ok(body)
}

/// A whole frame as it goes on the stream: the u32 big-endian length, then the body.
///
/// # Errors
/// `InvalidData` if the body is over `cap` bytes.
pub fn encode_frame<M: Serialize>(msg: &M, cap: usize) -> io::Result<Vec<u8>> {
    let body = encode(msg, cap)?;
    // `encode` refused anything over `cap`, and every cap fits in a u32.
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Writes one frame; returns its length.
async fn write_frame<T, M>(io: &mut T, msg: &M, cap: usize) -> io::Result<usize>
where
    T: AsyncWrite + Unpin + Send,
    M: Serialize,
{
    let frame = encode_frame(msg, cap)?;
    io.write_all(&frame).await?;
    io.flush().await?;
    Ok(frame.len())
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Inbound;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Inbound>
    where
        T: AsyncRead + Unpin + Send,
    {
        let (frame, len) = read_frame(io, MAX_REQUEST_BYTES).await?;
        let label = frame.as_ref().map_or(SYNC, request_label);
        self.bytes.add(super::Direction::Received, label, len);
        Ok(match frame {
            Ok(req) => Inbound::Request(req),
            Err(e) => Inbound::Malformed(e),
        })
    }

    /// A bad response fails the request with an I/O error carrying the [`FrameError`], so
    /// the node can tell the peer's fault from a timeout or a closed connection.
    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let (frame, len) = read_frame(io, MAX_RESPONSE_BYTES).await?;
        let label = frame.as_ref().map_or(SYNC, response_label);
        self.bytes.add(super::Direction::Received, label, len);
        Ok(frame?)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Inbound,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match req {
            Inbound::Request(req) => {
                let len = write_frame(io, &req, MAX_REQUEST_BYTES).await?;
                self.bytes.add(super::Direction::Sent, request_label(&req), len);
                Ok(())
            }
            Inbound::Malformed(e) => Err(io::Error::new(io::ErrorKind::InvalidInput, e)),
        }
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let len = write_frame(io, &res, MAX_RESPONSE_BYTES).await?;
        self.bytes.add(super::Direction::Sent, response_label(&res), len);
        Ok(())
    }
}

/// The `protocol` label of the sync protocol's bytes.
const SYNC: &str = "sync";
/// The `protocol` label of compact block relay's frames on the sync protocol.
const SYNC_COMPACT: &str = "sync_compact";

fn request_label(req: &SyncRequest) -> &'static str {
    match req {
        SyncRequest::CompactBlock(_) | SyncRequest::BlockTxs { .. } => SYNC_COMPACT,
        _ => SYNC,
    }
}

fn response_label(res: &SyncResponse) -> &'static str {
    match res {
        SyncResponse::CompactBlock(_) | SyncResponse::BlockTxs(_) => SYNC_COMPACT,
        _ => SYNC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let req = SyncRequest::Headers { locator: vec![[1; 32], [2; 32]], max: 2000 };
        let bytes = encode(&req, MAX_REQUEST_BYTES).unwrap();
        assert_eq!(decode::<SyncRequest>(&bytes, MAX_REQUEST_BYTES).unwrap(), req);
        assert!(decode::<SyncRequest>(&[0xff, 0xff, 0xff], MAX_REQUEST_BYTES).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode::<SyncRequest>(&trailing, MAX_REQUEST_BYTES).is_err());
    }

    fn read(bytes: &[u8]) -> Inbound {
        use libp2p::request_response::Codec;
        let mut io = futures::io::Cursor::new(bytes);
        let protocol = StreamProtocol::new("/test");
        futures::executor::block_on(SyncCodec::default().read_request(&protocol, &mut io)).unwrap()
    }

    #[test]
    fn bad_request_frames_are_reported_not_dropped() {
        let frame = encode_frame(&SyncRequest::Status, MAX_REQUEST_BYTES).unwrap();
        assert_eq!(read(&frame), Inbound::Request(SyncRequest::Status));
        assert_eq!(read(&frame[..frame.len() - 1]), Inbound::Malformed(FrameError::Truncated));
        assert_eq!(read(&[0, 0]), Inbound::Malformed(FrameError::Truncated));
        let huge = u32::MAX.to_be_bytes();
        assert!(matches!(read(&huge), Inbound::Malformed(FrameError::Oversized { .. })));
        assert!(matches!(
            read(&[0, 0, 0, 2, 9, 9]),
            Inbound::Malformed(FrameError::Undecodable(_))
        ));
    }

    #[test]
    fn a_forged_huge_string_length_is_an_error_not_a_panic() {
        // `Refused` (variant 3) whose reason claims 2^64 - 1 bytes.
        let mut bytes = vec![3u8, 0xfd];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode::<SyncResponse>(&bytes, MAX_RESPONSE_BYTES).is_err());
        assert!(decode::<SyncResponse>(&bytes, MAX_REQUEST_BYTES).is_err());
    }

    #[test]
    fn a_forged_huge_vector_length_does_not_allocate() {
        // Variant 2 (Blocks) claiming 2^60 elements: bincode's limit-free serde path
        // must fail on the missing bytes rather than pre-allocating.
        let mut bytes = vec![2u8, 0xff];
        bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(decode::<SyncRequest>(&bytes, MAX_REQUEST_BYTES).is_err());
    }
}
