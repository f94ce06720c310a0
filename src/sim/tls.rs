//! API-SSL for simulated routers: the three ways a real router serves port 8729, with
//! certificates generated at start-up, and the server side of the handshake.
//!
//! - [`SimTls::Certificate`]: a leaf for `127.0.0.1`, `::1` and `localhost`, issued by a CA
//!   made for this simulator; clients verify it with [`SimTlsServer::ca_pem`].
//! - [`SimTls::SelfSigned`]: a self-signed leaf, as a router makes for itself; only a pin
//!   (or no verification) accepts it.
//! - [`SimTls::Anonymous`]: no certificate at all, only `ADH-AES256-GCM-SHA384` on TLS 1.2,
//!   as a router offers when api-ssl has no certificate.

use std::pin::Pin;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::dh::Dh;
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{Ssl, SslAcceptor, SslContext, SslMethod, SslVersion};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::routeros::tls::certificate_sha256;

/// The only suite a router without a certificate offers, at the security level it needs.
const ANONYMOUS_CIPHERS: &str = "ADH-AES256-GCM-SHA384:@SECLEVEL=0";
/// A client that connects and never finishes the handshake is dropped after this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Generated certificates are valid from an hour ago (clock skew) for this long.
const VALIDITY_DAYS: u32 = 825;

/// How simulated routers serve API-SSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimTls {
    /// A leaf issued by a CA made for this simulator.
    Certificate,
    /// A self-signed leaf.
    SelfSigned,
    /// No certificate: anonymous Diffie-Hellman on TLS 1.2.
    Anonymous,
}

impl SimTls {
    /// The name used on the command line and in [`super::SimRouterInfo::tls`].
    pub fn name(self) -> &'static str {
        match self {
            SimTls::Certificate => "certificate",
            SimTls::SelfSigned => "self-signed",
            SimTls::Anonymous => "anonymous",
        }
    }
}

impl FromStr for SimTls {
    type Err = String;

    fn from_str(text: &str) -> Result<SimTls, String> {
        [SimTls::Certificate, SimTls::SelfSigned, SimTls::Anonymous]
            .into_iter()
            .find(|mode| mode.name() == text)
            .ok_or_else(|| {
                format!("TLS mode must be certificate, self-signed or anonymous, not {text:?}")
            })
    }
}

/// Why the simulator's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up simulated API-SSL ({mode}): {source}")]
pub struct SimTlsError {
    mode: &'static str,
    source: ErrorStack,
}

/// What every listener of one simulator serves API-SSL with.
pub(crate) struct SimTlsServer {
    mode: SimTls,
    context: SslContext,
    ca_pem: Option<String>,
    cert_sha256: Option<String>,
}

impl SimTlsServer {
    /// Generates the keys and certificates `mode` needs and the server context.
    pub(crate) fn generate(mode: SimTls) -> Result<SimTlsServer, SimTlsError> {
        Self::build(mode).map_err(|source| SimTlsError {
            mode: mode.name(),
            source,
        })
    }

    fn build(mode: SimTls) -> Result<SimTlsServer, ErrorStack> {
        let (leaf, key, ca) = match mode {
            SimTls::Anonymous => return anonymous(),
            SimTls::SelfSigned => {
                let key = new_key()?;
                let cert = issue("CloudPilot simulated router", &key, None)?;
                (cert, key, None)
            }
            SimTls::Certificate => {
                let ca_key = new_key()?;
                let ca = issue_ca(&ca_key)?;
                let key = new_key()?;
                let cert = issue("localhost", &key, Some((&ca, &ca_key)))?;
                (cert, key, Some(ca))
            }
        };
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        acceptor.set_private_key(&key)?;
        acceptor.set_certificate(&leaf)?;
        acceptor.check_private_key()?;
        let ca_pem = match ca {
            Some(ca) => Some(String::from_utf8_lossy(&ca.to_pem()?).into_owned()),
            None => None,
        };
        Ok(SimTlsServer {
            mode,
            context: acceptor.build().into_context(),
            ca_pem,
            cert_sha256: Some(certificate_sha256(&leaf)?),
        })
    }

    pub(crate) fn mode(&self) -> SimTls {
        self.mode
    }

    /// PEM of the CA that issued the routers' certificate ([`SimTls::Certificate`] only).
    pub(crate) fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// SHA-256 (hex) of the routers' leaf certificate DER; none when anonymous.
    pub(crate) fn cert_sha256(&self) -> Option<&str> {
        self.cert_sha256.as_deref()
    }

    /// Runs the server side of the handshake; `None` (logged) when the client gave up or
    /// could not agree, so nothing of the API is ever read from it.
    pub(crate) async fn accept(&self, tcp: TcpStream) -> Option<SslStream<TcpStream>> {
        let ssl = Ssl::new(&self.context).ok()?;
        let mut stream = SslStream::new(ssl, tcp).ok()?;
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, Pin::new(&mut stream).accept()).await {
            Ok(Ok(())) => {
                let ssl = stream.ssl();
                tracing::debug!(
                    tls.version = ssl.version_str(),
                    tls.cipher = ssl.current_cipher().map(|c| c.name()).unwrap_or("none"),
                    "sim TLS established"
                );
                Some(stream)
            }
            Ok(Err(err)) => {
                tracing::debug!(cause = %err, "sim TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!("sim TLS handshake timed out");
                None
            }
        }
    }
}

/// The context of a router with no certificate: anonymous DH only, TLS 1.2 at most.
fn anonymous() -> Result<SimTlsServer, ErrorStack> {
    let mut builder = SslContext::builder(SslMethod::tls_server())?;
    builder.set_max_proto_version(Some(SslVersion::TLS1_2))?;
    builder.set_cipher_list(ANONYMOUS_CIPHERS)?;
    let params = Dh::get_2048_256()?;
    builder.set_tmp_dh(&params)?;
    Ok(SimTlsServer {
        mode: SimTls::Anonymous,
        context: builder.build(),
        ca_pem: None,
        cert_sha256: None,
    })
}

fn new_key() -> Result<PKey<Private>, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

/// A certificate skeleton: random serial, subject CN, validity, public key.
fn skeleton(common_name: &str, key: &PKey<Private>) -> Result<X509Builder, ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "CloudPilot simulator")?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(key)?;
    let not_before = i64::try_from(now.saturating_sub(3600)).unwrap_or(0);
    let not_before = Asn1Time::from_unix(not_before)?;
    let not_after = Asn1Time::days_from_now(VALIDITY_DAYS)?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    Ok(builder)
}

fn issue_ca(key: &PKey<Private>) -> Result<X509, ErrorStack> {
    let mut builder = skeleton("CloudPilot simulator CA", key)?;
    builder.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    builder.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
    builder.append_extension(ski)?;
    builder.sign(key, MessageDigest::sha256())?;
    Ok(builder.build())
}

/// A server leaf for the loopback names, signed by `issuer` or by itself.
fn issue(
    common_name: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
) -> Result<X509, ErrorStack> {
    let mut builder = skeleton(common_name, key)?;
    if let Some((ca, _)) = issuer {
        builder.set_issuer_name(ca.subject_name())?;
    }
    builder.append_extension(BasicConstraints::new().build()?)?;
    let usage = KeyUsage::new()
        .critical()
        .digital_signature()
        .key_agreement()
        .build()?;
    builder.append_extension(usage)?;
    builder.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .ip("::1")
        .dns("localhost")
        .build(&builder.x509v3_context(issuer.map(|(ca, _)| ca.as_ref()), None))?;
    builder.append_extension(san)?;
    let signer = issuer.map(|(_, ca_key)| ca_key).unwrap_or(key);
    builder.sign(signer, MessageDigest::sha256())?;
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_through_their_names() {
        for mode in [SimTls::Certificate, SimTls::SelfSigned, SimTls::Anonymous] {
            assert_eq!(mode.name().parse::<SimTls>().unwrap(), mode);
        }
        assert!("none".parse::<SimTls>().is_err());
    }

    /// The generated leaf chains to the generated CA and names the loopback address.
    #[test]
    fn certificate_mode_issues_a_leaf_the_ca_verifies() {
        let ca_key = new_key().unwrap();
        let ca = issue_ca(&ca_key).unwrap();
        let key = new_key().unwrap();
        let leaf = issue("localhost", &key, Some((&ca, &ca_key))).unwrap();
        assert!(leaf.verify(&ca.public_key().unwrap()).unwrap());
        assert!(!leaf.verify(&key).unwrap());
        let ips: Vec<Vec<u8>> = leaf
            .subject_alt_names()
            .unwrap()
            .iter()
            .filter_map(|name| name.ipaddress().map(<[u8]>::to_vec))
            .collect();
        assert!(ips.contains(&vec![127, 0, 0, 1]), "{ips:?}");
        let server = SimTlsServer::generate(SimTls::Certificate).unwrap();
        assert!(server
            .ca_pem()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(server.cert_sha256().unwrap().len(), 64);
    }

    #[test]
    fn anonymous_mode_has_no_certificate_to_pin_or_verify() {
        let server = SimTlsServer::generate(SimTls::Anonymous).unwrap();
        assert_eq!(server.mode(), SimTls::Anonymous);
        assert!(server.ca_pem().is_none() && server.cert_sha256().is_none());
    }
}
