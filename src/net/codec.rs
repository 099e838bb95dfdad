//! The sync protocol's codec: a u32 big-endian length, checked against the direction's cap
//! *before* anything is allocated, then a bincode body decoded with the same cap.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::protocol::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, SyncRequest, SyncResponse};

/// The request-response codec for [`SyncRequest`] / [`SyncResponse`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncCodec;

async fn read_frame<T, M>(io: &mut T, cap: usize) -> io::Result<M>
where
    T: AsyncRead + Unpin + Send,
    M: DeserializeOwned,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes over the {cap}-byte cap"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    decode(&buf, cap)
}

/// Decodes a frame body (also used by fuzz and property tests).
///
/// # Errors
/// `InvalidData` if the bytes are not one whole message.
pub fn decode<M: DeserializeOwned>(buf: &[u8], cap: usize) -> io::Result<M> {
    let config = bincode::config::standard();
    let (msg, used): (M, usize) = bincode::serde::decode_from_slice(buf, config)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    if used != buf.len() || buf.len() > cap {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "trailing bytes after message"));
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

async fn write_frame<T, M>(io: &mut T, msg: &M, cap: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
    M: Serialize,
{
    let body = encode(msg, cap)?;
    io.write_all(&(body.len() as u32).to_be_bytes()).await?;
    io.write_all(&body).await?;
    io.flush().await
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, MAX_REQUEST_BYTES).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req, MAX_REQUEST_BYTES).await
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
        write_frame(io, &res, MAX_RESPONSE_BYTES).await
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

    #[test]
    fn a_forged_huge_vector_length_does_not_allocate() {
        // Variant 2 (Blocks) claiming 2^60 elements: bincode's limit-free serde path
        // must fail on the missing bytes rather than pre-allocating.
        let mut bytes = vec![2u8, 0xff];
        bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(decode::<SyncRequest>(&bytes, MAX_REQUEST_BYTES).is_err());
    }
}
