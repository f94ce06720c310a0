//! Sealing of router passwords and the master key file.

use std::os::unix::fs::PermissionsExt;

use cloudpilot::store::seal::{load_or_create_key_file, SealError, Sealer};

const KEY_A: [u8; 32] = [0x11; 32];
const KEY_B: [u8; 32] = [0x22; 32];

/// What is sealed opens to the same bytes, and the ciphertext does not contain them.
#[test]
fn seal_round_trips_and_hides_plaintext() {
    let sealer = Sealer::new(1, KEY_A);
    let sealed = sealer.seal(b"router-password").unwrap();
    assert_eq!(sealed.key_id, 1);
    assert_eq!(sealed.ciphertext.len(), b"router-password".len() + 16);
    assert!(!sealed
        .ciphertext
        .windows(15)
        .any(|w| w == b"router-password"));
    assert_eq!(sealer.open(&sealed).unwrap(), b"router-password");
}

/// Every sealing draws a fresh nonce, so equal passwords do not look equal.
#[test]
fn seal_uses_a_fresh_nonce_each_time() {
    let sealer = Sealer::new(1, KEY_A);
    let a = sealer.seal(b"same").unwrap();
    let b = sealer.seal(b"same").unwrap();
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(a.ciphertext, b.ciphertext);
}

/// Any flipped bit in ciphertext, tag or nonce makes opening fail.
#[test]
fn tampered_secret_is_refused() {
    let sealer = Sealer::new(1, KEY_A);
    let sealed = sealer.seal(b"router-password").unwrap();
    for i in 0..sealed.ciphertext.len() {
        let mut bad = sealed.clone();
        bad.ciphertext[i] ^= 0x01;
        assert!(matches!(
            sealer.open(&bad),
            Err(SealError::Tampered { key_id: 1 })
        ));
    }
    let mut bad_nonce = sealed.clone();
    bad_nonce.nonce[0] ^= 0x80;
    assert!(sealer.open(&bad_nonce).is_err());
}

/// A different key under the same id cannot open it; an unknown id is reported as such.
#[test]
fn wrong_or_unknown_key_is_refused() {
    let sealed = Sealer::new(1, KEY_A).seal(b"secret").unwrap();
    assert!(matches!(
        Sealer::new(1, KEY_B).open(&sealed),
        Err(SealError::Tampered { key_id: 1 })
    ));
    assert!(matches!(
        Sealer::new(2, KEY_B).open(&sealed),
        Err(SealError::UnknownKey { key_id: 1 })
    ));
}

/// After rotation old secrets still open, are flagged for resealing, and reseal under the
/// new key.
#[test]
fn rotation_opens_old_secrets_and_reseals_them() {
    let old = Sealer::new(1, KEY_A).seal(b"secret").unwrap();
    let rotated = Sealer::new(2, KEY_B).with_old_key(1, KEY_A);
    assert!(rotated.needs_reseal(&old));
    assert_eq!(rotated.open(&old).unwrap(), b"secret");
    let resealed = rotated.reseal(&old).unwrap();
    assert_eq!(resealed.key_id, 2);
    assert!(!rotated.needs_reseal(&resealed));
    assert_eq!(Sealer::new(2, KEY_B).open(&resealed).unwrap(), b"secret");
    // An old key with the current id never displaces the current key.
    let same_id = Sealer::new(2, KEY_B).with_old_key(2, KEY_A);
    assert_eq!(same_id.open(&resealed).unwrap(), b"secret");
}

/// Debug output names key ids, never key bytes.
#[test]
fn sealer_debug_hides_keys() {
    let shown = format!("{:?}", Sealer::new(3, KEY_A).with_old_key(1, KEY_B));
    assert!(shown.contains("current_key_id: 3"), "{shown}");
    assert!(
        !shown.contains("17") && !shown.contains("11, 11"),
        "{shown}"
    );
}

/// A missing key file is created owner-only with 64 hex characters and the same key is
/// returned on every later call.
#[test]
fn key_file_created_0600_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("master.key");
    let first = load_or_create_key_file(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim(), hex::encode(first));
    assert_ne!(first, [0u8; 32]);
    assert_eq!(load_or_create_key_file(&path).unwrap(), first);
}

/// Two starts racing to create the key file end up with one and the same key.
#[test]
fn key_file_race_yields_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || load_or_create_key_file(&path).unwrap())
        })
        .collect();
    let keys: Vec<[u8; 32]> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(keys.iter().all(|k| *k == keys[0]));
}

/// A key file others can read is refused rather than trusted.
#[test]
fn key_file_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    load_or_create_key_file(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = load_or_create_key_file(&path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
}

/// A key file that is not 64 hex characters is an error, not a silently new key.
#[test]
fn key_file_with_bad_contents_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    std::fs::write(&path, "not-hex\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = load_or_create_key_file(&path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not-hex\n");
}
