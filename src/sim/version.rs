//! RouterOS version numbers and the protocol features that depend on them.

/// A RouterOS version as `major.minor.patch`; suffixes such as `beta2` are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RouterVersion(u16, u16, u16);

/// First version that takes `/login =name= =password=` instead of the MD5 challenge.
const PLAIN_LOGIN: RouterVersion = RouterVersion(6, 43, 0);
/// First version that answers a print matching nothing with `!empty`.
const EMPTY_REPLY: RouterVersion = RouterVersion(7, 18, 0);

impl RouterVersion {
    /// Reads the leading digits of up to three dot-separated parts; anything unreadable is 0.
    pub(crate) fn parse(text: &str) -> Self {
        let mut parts = text.split('.').map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap_or(0)
        });
        let mut next = || parts.next().unwrap_or(0);
        RouterVersion(next(), next(), next())
    }

    pub(crate) fn has_plain_login(self) -> bool {
        self >= PLAIN_LOGIN
    }

    pub(crate) fn sends_empty(self) -> bool {
        self >= EMPTY_REPLY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_form_and_empty_reply_switch_at_the_documented_versions() {
        assert!(RouterVersion::parse("6.43").has_plain_login());
        assert!(!RouterVersion::parse("6.42.12").has_plain_login());
        assert!(RouterVersion::parse("7.18.2").sends_empty());
        assert!(RouterVersion::parse("7.18beta2").sends_empty());
        assert!(!RouterVersion::parse("7.17.2").sends_empty());
        assert!(!RouterVersion::parse("6.49.10").sends_empty());
    }
}
