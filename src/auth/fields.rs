//! Field validation for registration, profiles and custom API keys, with the messages
//! Django REST Framework gave, so clients that show them keep showing the same words.
//!
//! Like DRF, every rule that fails for a field adds its own message; a field that is
//! missing or blank gets only that message. Email and URL checks follow Django's
//! validators for ASCII input; internationalised domain names are refused rather than
//! IDNA-encoded (lifting that needs an IDNA crate).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

pub const REQUIRED: &str = "This field is required.";
pub const BLANK: &str = "This field may not be blank.";
pub const USERNAME_TAKEN: &str = "A user with that username already exists.";
pub const USERNAME_CHARSET: &str = "Enter a valid username. This value may contain only \
                                    letters, numbers, and @/./+/-/_ characters.";
pub const PASSWORD_TOO_SHORT: &str =
    "This password is too short. It must contain at least 8 characters.";
pub const PASSWORD_NUMERIC: &str = "This password is entirely numeric.";
pub const EMAIL_INVALID: &str = "Enter a valid email address.";
pub const URL_INVALID: &str = "Enter a valid URL.";
pub const PUBLIC_KEY_SHAPE: &str =
    "Public key must be exactly 32 lowercase hexadecimal characters.";
pub const PRIVATE_KEY_SHAPE: &str = "Private key must be exactly 64 hexadecimal characters.";
pub const PUBLIC_KEY_TAKEN: &str = "API key with this public key already exists.";

pub const USERNAME_MAX: usize = 150;
pub const EMAIL_MAX: usize = 254;
pub const WEBSITE_MAX: usize = 200;
pub const BIO_MAX: usize = 500;
pub const PASSWORD_MIN: usize = 8;

/// Messages per field, in the `{"field": ["message", ...]}` shape of a 400 answer.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

pub fn add(errors: &mut FieldErrors, field: &str, message: impl Into<String>) {
    errors
        .entry(field.to_owned())
        .or_default()
        .push(message.into());
}

pub fn too_long(max: usize) -> String {
    format!("Ensure this field has no more than {max} characters.")
}

/// Checks a username's presence, length and characters (`[\w.@+-]`, `\w` being Unicode
/// letters, digits and `_`). Uniqueness is the caller's, since it needs the store.
pub fn check_username(username: Option<&str>, errors: &mut FieldErrors) {
    let Some(name) = required(username, "username", errors) else {
        return;
    };
    if name.chars().count() > USERNAME_MAX {
        add(errors, "username", too_long(USERNAME_MAX));
    }
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '@' | '+' | '-');
    if !name.chars().all(allowed) {
        add(errors, "username", USERNAME_CHARSET);
    }
}

/// Django's `MinimumLengthValidator` (8) and `NumericPasswordValidator`. A password is not
/// trimmed: spaces are part of it.
pub fn check_password(password: Option<&str>, errors: &mut FieldErrors) {
    let Some(pw) = password else {
        add(errors, "password", REQUIRED);
        return;
    };
    if pw.is_empty() {
        add(errors, "password", BLANK);
        return;
    }
    if pw.chars().count() < PASSWORD_MIN {
        add(errors, "password", PASSWORD_TOO_SHORT);
    }
    if pw.chars().all(|c| c.is_numeric()) {
        add(errors, "password", PASSWORD_NUMERIC);
    }
}

/// An optional email: empty is allowed, anything else must look like an address.
pub fn check_email(email: &str, errors: &mut FieldErrors) {
    if email.is_empty() {
        return;
    }
    if email.chars().count() > EMAIL_MAX {
        add(errors, "email", too_long(EMAIL_MAX));
    }
    if !is_email(email) {
        add(errors, "email", EMAIL_INVALID);
    }
}

/// An optional website: empty is allowed, anything else must be an http(s)/ftp(s) URL.
pub fn check_website(website: &str, errors: &mut FieldErrors) {
    if website.is_empty() {
        return;
    }
    if website.chars().count() > WEBSITE_MAX {
        add(errors, "website", too_long(WEBSITE_MAX));
    }
    if !is_url(website) {
        add(errors, "website", URL_INVALID);
    }
}

pub fn check_bio(bio: &str, errors: &mut FieldErrors) {
    if bio.chars().count() > BIO_MAX {
        add(errors, "bio", too_long(BIO_MAX));
    }
}

/// A present, non-blank value trimmed of surrounding whitespace (DRF's `trim_whitespace`).
pub fn required<'a>(
    value: Option<&'a str>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<&'a str> {
    match value.map(str::trim) {
        None => {
            add(errors, field, REQUIRED);
            None
        }
        Some("") => {
            add(errors, field, BLANK);
            None
        }
        Some(v) => Some(v),
    }
}

/// Django's `EmailValidator` for ASCII: a dot-atom local part, then a domain of labels
/// ending in a TLD of 2..=63 letters/digits/hyphens, or `localhost`, or `[ip]`.
pub fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let local_ok = !local.is_empty()
        && local
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(atext));
    if !local_ok {
        return false;
    }
    if domain == "localhost" {
        return true;
    }
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        return literal.parse::<Ipv4Addr>().is_ok()
            || literal
                .strip_prefix("IPv6:")
                .is_some_and(|v6| v6.parse::<Ipv6Addr>().is_ok());
    }
    let Some((labels, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    let tld_ok = (2..=63).contains(&tld.len())
        && tld.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !tld.ends_with('-');
    tld_ok && labels.split('.').all(is_dns_label)
}

/// Django's `URLValidator`: scheme http, https, ftp or ftps; optional `user[:pass]@`; a host
/// that is a DNS name with a TLD, `localhost`, an IPv4 address or a bracketed IPv6
/// address; an optional port; then a path, query or fragment; no whitespace anywhere.
pub fn is_url(url: &str) -> bool {
    if url.len() > 2048 || url.chars().any(char::is_whitespace) {
        return false;
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    if !matches!(
        scheme.to_ascii_lowercase().as_str(),
        "http" | "https" | "ftp" | "ftps"
    ) {
        return false;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_port = match authority.rsplit_once('@') {
        Some((user_info, host_port)) => {
            if user_info.is_empty() || user_info.contains('/') {
                return false;
            }
            host_port
        }
        None => authority,
    };
    let (host, port) = split_port(host_port);
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    is_url_host(host)
}

fn split_port(host_port: &str) -> (&str, Option<&str>) {
    if host_port.starts_with('[') {
        return match host_port.find(']') {
            Some(end) => {
                let (host, after) = host_port.split_at(end + 1);
                (host, after.strip_prefix(':'))
            }
            None => (host_port, None),
        };
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_port, None),
    }
}

fn is_url_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok();
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host.parse::<Ipv4Addr>().is_ok();
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let Some((labels, tld)) = host.rsplit_once('.') else {
        return false;
    };
    let tld_ok = (2..=63).contains(&tld.len())
        && !tld.starts_with('-')
        && !tld.ends_with('-')
        && (tld.chars().all(|c| c.is_ascii_alphabetic() || c == '-')
            || tld.to_ascii_lowercase().starts_with("xn--"));
    tld_ok && labels.split('.').all(is_dns_label)
}

fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_for(f: impl FnOnce(&mut FieldErrors)) -> FieldErrors {
        let mut e = FieldErrors::new();
        f(&mut e);
        e
    }

    #[test]
    fn username_rules_give_drf_messages() {
        assert_eq!(
            errors_for(|e| check_username(None, e))["username"],
            [REQUIRED]
        );
        assert_eq!(
            errors_for(|e| check_username(Some("  "), e))["username"],
            [BLANK]
        );
        assert_eq!(
            errors_for(|e| check_username(Some("bad name"), e))["username"],
            [USERNAME_CHARSET]
        );
        let long = "a".repeat(151);
        assert_eq!(
            errors_for(|e| check_username(Some(&long), e))["username"],
            ["Ensure this field has no more than 150 characters."]
        );
        assert!(errors_for(|e| check_username(Some("jürgen.o+x@y_z-1"), e)).is_empty());
        assert!(errors_for(|e| check_username(Some(&"a".repeat(150)), e)).is_empty());
    }

    #[test]
    fn password_rules_report_every_failure() {
        assert_eq!(
            errors_for(|e| check_password(None, e))["password"],
            [REQUIRED]
        );
        assert_eq!(
            errors_for(|e| check_password(Some(""), e))["password"],
            [BLANK]
        );
        assert_eq!(
            errors_for(|e| check_password(Some("1234"), e))["password"],
            [PASSWORD_TOO_SHORT, PASSWORD_NUMERIC]
        );
        assert_eq!(
            errors_for(|e| check_password(Some("12345678"), e))["password"],
            [PASSWORD_NUMERIC]
        );
        assert_eq!(
            errors_for(|e| check_password(Some("abc"), e))["password"],
            [PASSWORD_TOO_SHORT]
        );
        assert!(errors_for(|e| check_password(Some("abcd1234"), e)).is_empty());
    }

    #[test]
    fn email_validation_accepts_addresses_and_refuses_the_rest() {
        for good in [
            "a@b.co",
            "first.last+tag@mail.example.org",
            "x@localhost",
            "u@[10.0.0.1]",
        ] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "",
            "plain",
            "@b.co",
            "a@",
            "a@b",
            "a..b@c.com",
            ".a@c.com",
            "a@-b.com",
            "a b@c.com",
            "a@b.c",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(
            errors_for(|e| check_email("", e)).is_empty(),
            "email is optional"
        );
        assert_eq!(
            errors_for(|e| check_email("nope", e))["email"],
            [EMAIL_INVALID]
        );
    }

    #[test]
    fn url_validation_accepts_web_urls_and_refuses_the_rest() {
        for good in [
            "https://example.com",
            "http://example.com:8080/path?q=1#f",
            "HTTPS://Sub.Example.co.uk/",
            "http://127.0.0.1/",
            "http://[::1]:80/",
            "http://localhost:3000",
            "ftp://user:pw@files.example.net/x",
        ] {
            assert!(is_url(good), "{good}");
        }
        for bad in [
            "example.com",
            "javascript://example.com/%0aalert(1)x",
            "http://",
            "http://exa mple.com",
            "http://example",
            "http://999.1.1.1/",
            "http://example.com:port/",
            "http://-bad.com",
            "mailto:a@b.co",
        ] {
            assert!(!is_url(bad), "{bad}");
        }
        assert!(
            errors_for(|e| check_website("", e)).is_empty(),
            "website may be empty"
        );
        assert_eq!(
            errors_for(|e| check_website("nope", e))["website"],
            [URL_INVALID]
        );
    }

    #[test]
    fn bio_is_limited_to_500_characters() {
        assert!(errors_for(|e| check_bio(&"é".repeat(500), e)).is_empty());
        assert_eq!(
            errors_for(|e| check_bio(&"a".repeat(501), e))["bio"],
            ["Ensure this field has no more than 500 characters."]
        );
    }
}
