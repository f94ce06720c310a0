//! TLS for the RouterOS API (API-SSL, port 8729): how a router's certificate is checked,
//! and the OpenSSL handshake that runs between TCP connect and login.
//!
//! OpenSSL rather than rustls, because a router with no certificate offers only anonymous
//! Diffie-Hellman suites on TLS 1.2, which rustls cannot speak (see `ROUTEROS.md`).

use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use openssl::hash::MessageDigest;
use openssl::ssl::{ConnectConfiguration, SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::{X509Ref, X509VerifyResult};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

/// Suites for `tls=insecure`: the strong ones including the anonymous DH suites a router
/// with no certificate offers, which only security level 0 allows. Not `DEFAULT:ADH`:
/// `DEFAULT` deletes the anonymous suites for good, so a later `ADH` adds nothing back.
const INSECURE_CIPHERS: &str = "HIGH:!PSK:!SRP:@SECLEVEL=0";

/// How a router's certificate is checked; the router's `tls` field.
#[derive(Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// A chain to the system roots (and `ca_file` when given), and the host name or IP
    /// address in the certificate.
    Verify { ca_file: Option<PathBuf> },
    /// Nothing is checked, and anonymous suites are allowed: encryption without
    /// authentication, for routers with no certificate.
    Insecure,
    /// Any chain, as long as the leaf certificate's DER has this SHA-256; for routers with
    /// a self-signed certificate.
    Pin([u8; 32]),
}

impl fmt::Debug for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsMode::Verify { ca_file } => {
                f.debug_struct("Verify").field("ca_file", ca_file).finish()
            }
            TlsMode::Insecure => f.write_str("Insecure"),
            TlsMode::Pin(digest) => write!(f, "Pin({})", hex::encode(digest)),
        }
    }
}

impl TlsMode {
    /// Reads a router's `tls` field: `verify` (also the empty string), `insecure`, or
    /// `pin:<64 hex digits>` (colons between bytes, as tools print fingerprints, allowed).
    /// `ca_file` applies to `verify` only.
    pub fn parse(text: &str, ca_file: Option<PathBuf>) -> Result<TlsMode, String> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "" | "verify" => return Ok(TlsMode::Verify { ca_file }),
            "insecure" => return Ok(TlsMode::Insecure),
            _ => {}
        }
        let Some(pin) = text
            .split_once(':')
            .filter(|(kind, _)| kind.eq_ignore_ascii_case("pin"))
            .map(|(_, pin)| pin.replace(':', ""))
        else {
            return Err(format!(
                "tls must be verify, insecure or pin:<sha256 hex>, not {text:?}"
            ));
        };
        let mut digest = [0u8; 32];
        hex::decode_to_slice(&pin, &mut digest)
            .map_err(|_| format!("tls pin must be the 64 hex digits of a SHA-256, not {pin:?}"))?;
        Ok(TlsMode::Pin(digest))
    }
}

/// Why the TLS layer under an API session did not come up.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot set up TLS for {addr}: {reason}")]
    Setup { addr: String, reason: String },
    #[error(
        "the certificate of {addr} is not trusted ({reason}){presented}; install a \
         certificate from a trusted CA on the router, set fleet.tls_ca_file, pin it with \
         tls=pin:<sha256>, or use tls=insecure"
    )]
    Untrusted {
        addr: String,
        reason: String,
        /// ", it presents sha256 <hex>" when the certificate was seen, else empty.
        presented: String,
    },
    #[error(
        "TLS handshake with {addr} failed: {reason}; check that the port is the router's \
         api-ssl service (8729 by default){hint}"
    )]
    Handshake {
        addr: String,
        reason: String,
        hint: &'static str,
    },
    #[error("TLS handshake with {addr} got no answer in time")]
    HandshakeTimeout { addr: String },
    #[error(
        "{addr} presented no certificate (anonymous TLS), so tls=pin cannot be checked; \
         install a certificate on the router or use tls=insecure"
    )]
    NoCertificate { addr: String },
    #[error(
        "the certificate of {addr} does not match the pin: expected sha256 {expected}, got \
         {got}; if the router's certificate was replaced on purpose, update the pin"
    )]
    PinMismatch {
        addr: String,
        expected: String,
        got: String,
    },
}

/// What an operator may try when the handshake itself fails in a strict mode.
const ANONYMOUS_HINT: &str = "; a router without a certificate offers only anonymous \
                              suites, which only tls=insecure accepts";

/// SHA-256 of a certificate's DER, as hex; the form `tls=pin:` takes.
pub fn certificate_sha256(cert: &X509Ref) -> Result<String, openssl::error::ErrorStack> {
    Ok(hex::encode(cert.digest(MessageDigest::sha256())?))
}

/// Runs the client side of the TLS handshake over `tcp` to `host` (a DNS name or an IP
/// address, checked against the certificate in [`TlsMode::Verify`]), within `timeout`.
/// Nothing of the RouterOS API is written before this returns `Ok`.
pub(crate) async fn connect(
    tcp: TcpStream,
    host: &str,
    addr: &str,
    mode: &TlsMode,
    timeout: Duration,
) -> Result<SslStream<TcpStream>, TlsError> {
    let setup = |e: openssl::error::ErrorStack| TlsError::Setup {
        addr: addr.to_owned(),
        reason: e.to_string(),
    };
    let ssl = configure(mode, addr)?
        .into_ssl(host.trim_start_matches('[').trim_end_matches(']'))
        .map_err(setup)?;
    let mut stream = SslStream::new(ssl, tcp).map_err(setup)?;
    match tokio::time::timeout(timeout, Pin::new(&mut stream).connect()).await {
        Err(_) => {
            return Err(TlsError::HandshakeTimeout {
                addr: addr.to_owned(),
            })
        }
        Ok(Err(err)) => return Err(handshake_failure(&stream, err, mode, addr)),
        Ok(Ok(())) => {}
    }
    if let TlsMode::Pin(expected) = mode {
        check_pin(&stream, expected, addr)?;
    }
    let ssl = stream.ssl();
    tracing::debug!(
        router.addr = %addr,
        tls.version = ssl.version_str(),
        tls.cipher = ssl.current_cipher().map(|c| c.name()).unwrap_or("none"),
        "TLS established"
    );
    Ok(stream)
}

fn configure(mode: &TlsMode, addr: &str) -> Result<ConnectConfiguration, TlsError> {
    let setup = |reason: String| TlsError::Setup {
        addr: addr.to_owned(),
        reason,
    };
    let mut builder =
        SslConnector::builder(SslMethod::tls_client()).map_err(|e| setup(e.to_string()))?;
    match mode {
        TlsMode::Verify {
            ca_file: Some(path),
        } => builder
            .set_ca_file(path)
            .map_err(|e| setup(format!("cannot load CA file {}: {e}", path.display())))?,
        TlsMode::Verify { ca_file: None } => {}
        TlsMode::Insecure => {
            builder.set_verify(SslVerifyMode::NONE);
            builder
                .set_cipher_list(INSECURE_CIPHERS)
                .map_err(|e| setup(e.to_string()))?;
        }
        TlsMode::Pin(_) => builder.set_verify(SslVerifyMode::NONE),
    }
    let strict = matches!(mode, TlsMode::Verify { .. });
    let mut config = builder
        .build()
        .configure()
        .map_err(|e| setup(e.to_string()))?;
    config.set_verify_hostname(strict);
    Ok(config)
}

/// Turns a failed handshake into the error that says what to change.
fn handshake_failure(
    stream: &SslStream<TcpStream>,
    err: openssl::ssl::Error,
    mode: &TlsMode,
    addr: &str,
) -> TlsError {
    let ssl = stream.ssl();
    let verdict = ssl.verify_result();
    if matches!(mode, TlsMode::Verify { .. }) && verdict != X509VerifyResult::OK {
        let presented = ssl
            .peer_cert_chain()
            .and_then(|chain| chain.iter().next())
            .and_then(|leaf| certificate_sha256(leaf).ok())
            .map(|hex| format!(", it presents sha256 {hex}"))
            .unwrap_or_default();
        return TlsError::Untrusted {
            addr: addr.to_owned(),
            reason: verdict.error_string().to_owned(),
            presented,
        };
    }
    let reason = match (err.ssl_error(), err.io_error()) {
        (Some(stack), _) => stack.to_string(),
        (None, Some(io)) => io.to_string(),
        (None, None) => err.to_string(),
    };
    TlsError::Handshake {
        addr: addr.to_owned(),
        reason,
        hint: match mode {
            TlsMode::Insecure => "",
            _ => ANONYMOUS_HINT,
        },
    }
}

fn check_pin(
    stream: &SslStream<TcpStream>,
    expected: &[u8; 32],
    addr: &str,
) -> Result<(), TlsError> {
    let Some(leaf) = stream.ssl().peer_certificate() else {
        return Err(TlsError::NoCertificate {
            addr: addr.to_owned(),
        });
    };
    let got = certificate_sha256(&leaf).map_err(|e| TlsError::Setup {
        addr: addr.to_owned(),
        reason: e.to_string(),
    })?;
    let expected = hex::encode(expected);
    if got != expected {
        tracing::warn!(router.addr = %addr, tls.expected = %expected, tls.got = %got,
            "router certificate does not match the pin");
        return Err(TlsError::PinMismatch {
            addr: addr.to_owned(),
            expected,
            got,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_the_three_forms_of_the_tls_field() {
        let ca = Some(PathBuf::from("/etc/ca.pem"));
        assert_eq!(
            TlsMode::parse("verify", ca.clone()).unwrap(),
            TlsMode::Verify {
                ca_file: ca.clone()
            }
        );
        assert_eq!(
            TlsMode::parse("", None).unwrap(),
            TlsMode::Verify { ca_file: None }
        );
        assert_eq!(TlsMode::parse("Insecure", ca).unwrap(), TlsMode::Insecure);
        let hex64 = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let TlsMode::Pin(digest) = TlsMode::parse(&format!("pin:{hex64}"), None).unwrap() else {
            panic!("not a pin");
        };
        assert_eq!(hex::encode(digest), hex64.to_ascii_lowercase());
    }

    #[test]
    fn parse_accepts_a_colon_separated_fingerprint() {
        let colons = ["ab"; 32].join(":");
        assert_eq!(
            TlsMode::parse(&format!("PIN:{colons}"), None).unwrap(),
            TlsMode::Pin([0xab; 32])
        );
    }

    #[test]
    fn parse_rejects_unknown_modes_and_short_or_bad_pins() {
        assert!(TlsMode::parse("strict", None)
            .unwrap_err()
            .contains("verify, insecure"));
        assert!(TlsMode::parse("pin:abcd", None)
            .unwrap_err()
            .contains("64 hex"));
        let bad = format!("pin:{}", "zz".repeat(32));
        assert!(TlsMode::parse(&bad, None).is_err());
    }
}
