//! The JWTs of WebSocket-over-HTTP, HS256 with the app's SLIP secret and issuer
//! `slip-sockets` as the original's `jsonwebtoken` (npm) made them: each event request carries
//! one with audience `WebSocketEvent` that lives 60 s, and a control request must carry one
//! with audience `ControlEvent` (its `exp`, when present, not passed).
//!
//! Signing and checking are `jsonwebtoken`'s; the time is an argument (the core reads no
//! clock; the bridge signs with its own, the shard checks with its own).

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The `iss` of every token.
pub const ISSUER: &str = "slip-sockets";
/// The `aud` of an event request's token.
pub const EVENT_AUDIENCE: &str = "WebSocketEvent";
/// The `aud` a control request's token must have.
pub const CONTROL_AUDIENCE: &str = "ControlEvent";
/// How long an event request's token is good for: 60 s (`exp` = `iat` + 60).
pub const EVENT_TOKEN_LIFETIME_S: u64 = 60;

#[derive(Serialize)]
struct EventClaims<'a> {
    iat: u64,
    exp: u64,
    aud: &'a str,
    iss: &'a str,
}

/// The `Authorization` value of an event request signed at `now_unix_s`: `Bearer <JWT>`.
pub fn event_authorization(secret: &str, now_unix_s: u64) -> Result<String, String> {
    let claims = EventClaims {
        iat: now_unix_s,
        exp: now_unix_s + EVENT_TOKEN_LIFETIME_S,
        aud: EVENT_AUDIENCE,
        iss: ISSUER,
    };
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| format!("cannot sign the event token: {e}"))?;
    Ok(format!("Bearer {token}"))
}

#[derive(Deserialize)]
struct ControlClaims {
    exp: Option<f64>,
}

/// Whether a control request's `Authorization` header holds `Bearer <JWT>` with a token good
/// for the control API at `now_unix_s`.
pub fn control_authorized(authorization: Option<&str>, secret: &str, now_unix_s: u64) -> bool {
    let Some(token) = authorization
        .and_then(|value| value.strip_prefix("Bearer "))
        .filter(|token| !token.is_empty())
    else {
        return false;
    };
    if secret.is_empty() {
        return false;
    }
    let mut validation = Validation::new(Algorithm::HS256);
    // The original's publisher may sign without `expiresIn`: `exp` is checked below, when
    // present, with the shard's clock.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.set_audience(&[CONTROL_AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    let Ok(data) = decode::<ControlClaims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    ) else {
        return false;
    };
    !data.claims.exp.is_some_and(|exp| exp <= now_unix_s as f64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{json, Value};

    fn sign(claims: Value, secret: &str) -> String {
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        format!("Bearer {token}")
    }

    #[test]
    fn event_tokens_carry_the_original_claims() {
        let auth = event_authorization("s3cret", 1_000).unwrap();
        let token = auth.strip_prefix("Bearer ").unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_audience(&[EVENT_AUDIENCE]);
        let claims = decode::<Value>(token, &DecodingKey::from_secret(b"s3cret"), &validation)
            .unwrap()
            .claims;
        assert_eq!(
            claims,
            json!({"iat":1000,"exp":1060,"aud":"WebSocketEvent","iss":"slip-sockets"})
        );
    }

    #[test]
    fn control_tokens_need_the_secret_the_audience_and_the_issuer() {
        let good = json!({"aud":"ControlEvent","iss":"slip-sockets","iat":1000});
        assert!(control_authorized(
            Some(&sign(good.clone(), "s")),
            "s",
            2_000
        ));
        let timed = json!({"aud":"ControlEvent","iss":"slip-sockets","exp":1500});
        assert!(control_authorized(
            Some(&sign(timed.clone(), "s")),
            "s",
            1_000
        ));
        assert!(!control_authorized(Some(&sign(timed, "s")), "s", 1_500));
        assert!(!control_authorized(
            Some(&sign(good.clone(), "other")),
            "s",
            2_000
        ));
        let event = json!({"aud":"WebSocketEvent","iss":"slip-sockets"});
        assert!(!control_authorized(Some(&sign(event, "s")), "s", 2_000));
        let foreign = json!({"aud":"ControlEvent","iss":"someone"});
        assert!(!control_authorized(Some(&sign(foreign, "s")), "s", 2_000));
        let bare = sign(good.clone(), "s").replace("Bearer ", "");
        assert!(!control_authorized(Some(&bare), "s", 2_000));
        assert!(!control_authorized(None, "s", 2_000));
        assert!(!control_authorized(Some("Bearer "), "s", 2_000));
        assert!(!control_authorized(Some(&sign(good, "")), "", 2_000));
    }
}
