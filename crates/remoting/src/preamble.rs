//! What a server reads before the first frame: an optional HAProxy PROXY header (spec §5), then
//! the TLS sniff (spec §4), both bounded by a first-bytes timeout.
//!
//! Java's detector waits for 12 bytes before deciding, so a client that sends a legal 10-byte
//! frame and waits is never served. We decide on the first byte instead, which is just as exact:
//! a PROXY header starts with 'P' (v1) or 0x0D (v2) and a TLS handshake with 0x16, while a frame
//! starts with the high byte of its length, which is 0x00 for every frame under 16 MiB. Only
//! when the first bytes could still be a PROXY header do we wait for more.

use bytes::{Buf, BytesMut};
use ppp::{HeaderResult, PartialResult};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The v2 signature.
const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 prefix.
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// Largest PROXY header (v2: 16 + 65535).
const MAX_PROXY_HEADER: usize = 16 + 65535;
/// First byte of a TLS handshake record.
pub const TLS_HANDSHAKE: u8 = 0x16;

/// What the PROXY header said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyInfo {
    /// The real client, "ip:port".
    pub source: Option<String>,
    /// The address the client connected to, "ip:port".
    pub destination: Option<String>,
    /// TLVs whose value is ASCII, as (type, value) (Java: `proxy_protocol_tlv_0x<type>`).
    pub tlvs: Vec<(u8, String)>,
}

/// Why a connection was refused before its first frame.
#[derive(Debug, thiserror::Error)]
pub enum PreambleError {
    /// The socket failed or closed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A PROXY header that does not parse.
    #[error("malformed PROXY protocol header: {0}")]
    Proxy(String),
}

/// Reads the PROXY header if there is one. Returns what it said and every byte read after it.
pub async fn read_proxy<S: AsyncRead + Unpin>(
    io: &mut S,
) -> Result<(Option<ProxyInfo>, BytesMut), PreambleError> {
    let mut buf = BytesMut::with_capacity(256);
    loop {
        if buf.is_empty() {
            if io.read_buf(&mut buf).await? == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
            continue;
        }
        let could_be_v2 = V2_SIG.starts_with(&buf[..buf.len().min(12)]);
        let could_be_v1 = V1_PREFIX.starts_with(&buf[..buf.len().min(6)]);
        if !could_be_v1 && !could_be_v2 {
            return Ok((None, buf));
        }
        let full_prefix = buf.len() >= 12 || (could_be_v1 && buf.len() >= 6);
        if full_prefix {
            let parsed = HeaderResult::parse(&buf);
            if parsed.is_complete() {
                let (info, used) = match parsed {
                    HeaderResult::V1(Ok(h)) => (v1_info(&h.addresses), h.header.len()),
                    HeaderResult::V2(Ok(h)) => (v2_info(&h), h.len()),
                    HeaderResult::V1(Err(e)) => return Err(PreambleError::Proxy(e.to_string())),
                    HeaderResult::V2(Err(e)) => return Err(PreambleError::Proxy(e.to_string())),
                };
                buf.advance(used);
                return Ok((Some(info), buf));
            }
        }
        // A complete v1 line that did not parse is malformed, whatever the parser thinks more
        // bytes could change (the line ends at its CRLF).
        if could_be_v1 && buf.windows(2).any(|w| w == b"\r\n") {
            return Err(PreambleError::Proxy(format!(
                "bad v1 line {:?}",
                String::from_utf8_lossy(&buf[..buf.len().min(108)])
            )));
        }
        if buf.len() >= MAX_PROXY_HEADER {
            return Err(PreambleError::Proxy("header too long".into()));
        }
        if io.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
    }
}

fn v1_info(a: &ppp::v1::Addresses) -> ProxyInfo {
    match a {
        ppp::v1::Addresses::Tcp4(ip) => ProxyInfo {
            source: Some(format!("{}:{}", ip.source_address, ip.source_port)),
            destination: Some(format!(
                "{}:{}",
                ip.destination_address, ip.destination_port
            )),
            tlvs: Vec::new(),
        },
        ppp::v1::Addresses::Tcp6(ip) => ProxyInfo {
            source: Some(format!("[{}]:{}", ip.source_address, ip.source_port)),
            destination: Some(format!(
                "[{}]:{}",
                ip.destination_address, ip.destination_port
            )),
            tlvs: Vec::new(),
        },
        ppp::v1::Addresses::Unknown => ProxyInfo::default(),
    }
}

fn v2_info(h: &ppp::v2::Header<'_>) -> ProxyInfo {
    let (source, destination) = match (&h.command, &h.addresses) {
        (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv4(ip)) => (
            Some(format!("{}:{}", ip.source_address, ip.source_port)),
            Some(format!(
                "{}:{}",
                ip.destination_address, ip.destination_port
            )),
        ),
        (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv6(ip)) => (
            Some(format!("[{}]:{}", ip.source_address, ip.source_port)),
            Some(format!(
                "[{}]:{}",
                ip.destination_address, ip.destination_port
            )),
        ),
        // LOCAL (health checks) and UNIX/unspecified: the socket's own peer stands.
        _ => (None, None),
    };
    let tlvs = h
        .tlvs()
        .filter_map(Result::ok)
        .filter(|t| t.value.is_ascii())
        .map(|t| (t.kind, String::from_utf8_lossy(&t.value).into_owned()))
        .collect();
    ProxyInfo {
        source,
        destination,
        tlvs,
    }
}

/// A stream that first yields bytes already read from it, then reads on.
pub struct Prefixed<S> {
    prefix: BytesMut,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `prefix` is returned by reads before anything from `inner`.
    pub fn new(prefix: BytesMut, inner: S) -> Self {
        Prefixed { prefix, inner }
    }

    /// The first unread byte, if any is buffered.
    pub fn first_byte(&self) -> Option<u8> {
        self.prefix.first().copied()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(input: &[u8]) -> Result<(Option<ProxyInfo>, BytesMut), PreambleError> {
        let mut r = input;
        read_proxy(&mut r).await
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 500, ..Default::default() })]

        /// Arbitrary first bytes (often a PROXY prefix) give a header, plaintext or an error.
        #[test]
        fn arbitrary_preambles_never_panic(
            prefix in proptest::sample::select(vec![&b""[..], b"PROXY ", b"\r\n\r\n\0\r\nQUIT\n"]),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let input = [prefix, &tail[..]].concat();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let _ = rt.block_on(run(&input));
        }
    }

    #[tokio::test]
    async fn detects_on_the_first_byte() {
        // A 10-byte plaintext frame is not held back waiting for 12 bytes.
        let (info, rest) = run(&[0, 0, 0, 6, 0, 0, 0, 2, b'{', b'}']).await.unwrap();
        assert!(info.is_none());
        assert_eq!(rest.len(), 10);
        let (info, rest) = run(b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 9876\r\n\0\0")
            .await
            .unwrap();
        assert_eq!(info.unwrap().source.as_deref(), Some("1.2.3.4:1111"));
        assert_eq!(&rest[..], b"\0\0");
        assert!(matches!(
            run(b"PROXY TCP4 nonsense\r\n").await,
            Err(PreambleError::Proxy(_))
        ));
        assert!(run(b"PRO").await.is_err(), "cut short");
    }
}

/// A source address or network whose PROXY headers a server believes
/// (`proxyProtocolTrustedSources`: `127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedSource {
    network: std::net::IpAddr,
    prefix: u8,
}

impl TrustedSource {
    /// The loopback networks (127.0.0.0/8 and ::1): the default, for a proxy on the same host.
    pub fn loopback() -> Vec<TrustedSource> {
        vec![
            TrustedSource {
                network: std::net::Ipv4Addr::new(127, 0, 0, 0).into(),
                prefix: 8,
            },
            TrustedSource {
                network: std::net::Ipv6Addr::LOCALHOST.into(),
                prefix: 128,
            },
        ]
    }

    /// Every source (trust any PROXY header, as Java does).
    pub fn any() -> Vec<TrustedSource> {
        vec![
            TrustedSource {
                network: std::net::Ipv4Addr::UNSPECIFIED.into(),
                prefix: 0,
            },
            TrustedSource {
                network: std::net::Ipv6Addr::UNSPECIFIED.into(),
                prefix: 0,
            },
        ]
    }

    /// Parses a comma-separated list of addresses and CIDR networks; `*` means every source.
    pub fn parse_list(text: &str) -> Result<Vec<TrustedSource>, String> {
        let mut out = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                out.extend(Self::any());
            } else {
                out.push(item.parse()?);
            }
        }
        Ok(out)
    }

    /// True when `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let bits = |a: IpAddr| -> (u128, u32) {
            match a {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let ((net, width), (addr, addr_width)) = (bits(self.network), bits(ip));
        if width != addr_width {
            return false;
        }
        let host_bits = width - u32::from(self.prefix);
        if host_bits >= width {
            return true;
        }
        (net >> host_bits) == (addr >> host_bits)
    }
}

impl std::str::FromStr for TrustedSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("not an address or CIDR network: {s:?}");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let network: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(TrustedSource { network, prefix })
    }
}

#[cfg(test)]
mod trusted_tests {
    use super::TrustedSource;

    #[test]
    fn networks_contain_what_they_should() {
        let l = TrustedSource::parse_list("127.0.0.0/8, 10.1.0.0/16,::1,192.168.1.7").unwrap();
        let has = |ip: &str| l.iter().any(|t| t.contains(ip.parse().unwrap()));
        assert!(has("127.0.0.1") && has("127.255.1.2") && has("10.1.200.3") && has("::1"));
        assert!(has("192.168.1.7") && has("::ffff:10.1.0.9"));
        assert!(!has("10.2.0.1") && !has("192.168.1.8") && !has("8.8.8.8") && !has("::2"));
        let any = TrustedSource::parse_list("*").unwrap();
        assert!(any.iter().any(|t| t.contains("8.8.8.8".parse().unwrap())));
        assert!(any
            .iter()
            .any(|t| t.contains("2001:db8::1".parse().unwrap())));
        assert!(TrustedSource::parse_list("10.0.0.0/33").is_err());
        assert!(TrustedSource::parse_list("example.com").is_err());
    }
}
