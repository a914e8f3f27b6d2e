//! Input rules shared by every tier. Each check returns a message fit to show
//! to the client in a `bad_request` error.

/// Longest message body, in characters.
pub const MAX_BODY_CHARS: usize = 4000;
/// Longest `clientMsgId`, in bytes.
pub const MAX_CLIENT_MSG_ID: usize = 128;
/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 100;
/// Most members a room can be created with.
pub const MAX_ROOM_MEMBERS: usize = 1000;
/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in bytes (bounds the hashing work).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Largest `limit` for message history; larger values are capped to it.
pub const MAX_PAGE: i64 = 200;
/// `limit` used when a history request gives none.
pub const DEFAULT_PAGE: i64 = 50;
/// Largest `limit` for the room list; larger values are capped to it.
pub const MAX_ROOM_PAGE: i64 = 100;
/// `limit` used when a room-list request gives none.
pub const DEFAULT_ROOM_PAGE: i64 = 50;
/// Longest reaction emoji, in bytes (room for ZWJ sequences and skin tones).
pub const MAX_EMOJI_BYTES: usize = 64;
/// Most distinct emoji one user may have on one message.
pub const MAX_REACTIONS_PER_USER: i64 = 20;

/// A username: 3–32 characters of ASCII letters, digits, `_`, `.` or `-`.
pub fn username(s: &str) -> Result<(), String> {
    let ok_len = (3..=32).contains(&s.len());
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err("username must be 3 to 32 characters of letters, digits, '_', '.' or '-'".into())
    }
}

/// A password: at least [`MIN_PASSWORD_CHARS`] characters, at most [`MAX_PASSWORD_BYTES`] bytes.
pub fn password(s: &str) -> Result<(), String> {
    if s.chars().count() < MIN_PASSWORD_CHARS || s.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    Ok(())
}

/// A message body: 1 to [`MAX_BODY_CHARS`] characters, not only whitespace.
pub fn body(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("body must not be empty".into());
    }
    if s.chars().count() > MAX_BODY_CHARS {
        return Err(format!("body must be at most {MAX_BODY_CHARS} characters"));
    }
    Ok(())
}

/// A client message id: 1 to [`MAX_CLIENT_MSG_ID`] bytes.
pub fn client_msg_id(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_CLIENT_MSG_ID {
        return Err(format!(
            "clientMsgId must be 1 to {MAX_CLIENT_MSG_ID} bytes"
        ));
    }
    Ok(())
}

/// A room name: 1 to [`MAX_ROOM_NAME_CHARS`] characters, not only whitespace.
pub fn room_name(s: &str) -> Result<(), String> {
    if s.trim().is_empty() || s.chars().count() > MAX_ROOM_NAME_CHARS {
        return Err(format!(
            "name must be 1 to {MAX_ROOM_NAME_CHARS} characters"
        ));
    }
    Ok(())
}

/// A reaction: 1 to [`MAX_EMOJI_BYTES`] bytes, no whitespace or control
/// characters, no ASCII letters or digits (so `":smile:"`-style names and
/// plain words are refused; any emoji, including ZWJ sequences, passes).
pub fn emoji(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_EMOJI_BYTES
        && s.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "emoji must be 1 to {MAX_EMOJI_BYTES} bytes of emoji, without spaces or letters"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(username("alice").is_ok());
        assert!(username("a.b-c_9").is_ok());
        assert!(username("al").is_err());
        assert!(username(&"x".repeat(33)).is_err());
        assert!(username("al ice").is_err());
        assert!(username("élise").is_err());
    }

    #[test]
    fn bodies() {
        assert!(body("hi").is_ok());
        assert!(body("   ").is_err());
        assert!(body(&"é".repeat(MAX_BODY_CHARS)).is_ok());
        assert!(body(&"é".repeat(MAX_BODY_CHARS + 1)).is_err());
    }

    #[test]
    fn passwords_and_ids_and_names() {
        assert!(password("12345678").is_ok());
        assert!(password("1234567").is_err());
        assert!(password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(client_msg_id("").is_err());
        assert!(client_msg_id("m-1").is_ok());
        assert!(room_name("general").is_ok());
        assert!(room_name(" ").is_err());
    }

    #[test]
    fn emojis() {
        for ok in ["👍", "❤️", "👩‍👩‍👧", "👍🏽"] {
            assert!(emoji(ok).is_ok(), "{ok}");
        }
        for bad in ["", "smile", ":smile:", "👍 ", "\u{0}", &"👍".repeat(17)] {
            assert!(emoji(bad).is_err(), "{bad:?}");
        }
    }
}
