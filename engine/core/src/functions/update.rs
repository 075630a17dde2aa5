//! `PUT /associations` (the Ekko CLI's deploy call): the body `{"token":"<JWT>"}` whose payload
//! is the whole associations document, HS256 with the server-wide secret (`--jwt-secret`,
//! Ekko's `SECRET_KEY`). A good token's document replaces every app's associations on every
//! node; a bad one is `400 Invalid JWT`, as Ekko answered.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::associations::Associations;
use super::table::FunctionTable;

/// The path of the update.
pub const UPDATE_PATH: &str = "/associations";

/// Why an update was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateError {
    /// No server secret is configured: nobody can sign an update (403).
    NoSecret,
    /// The body is not `{"token":…}`, or the token is not HS256 with the secret, or expired.
    InvalidJwt,
    /// The token is good but its document is not (unknown function, bad pattern, bounds).
    Invalid(String),
}

impl UpdateError {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            UpdateError::NoSecret => 403,
            UpdateError::InvalidJwt | UpdateError::Invalid(_) => 400,
        }
    }

    /// The response body (plain text).
    pub fn text(&self) -> String {
        match self {
            UpdateError::NoSecret => {
                "Associations updates need the server secret (--jwt-secret, SECRET_KEY)".to_owned()
            }
            UpdateError::InvalidJwt => "Invalid JWT".to_owned(),
            UpdateError::Invalid(reason) => format!("Invalid associations: {reason}"),
        }
    }
}

#[derive(Deserialize)]
struct Body {
    token: String,
}

/// Checks an update's body at `now_unix_s` and returns the associations it carries.
pub fn verify_update(
    body: &[u8],
    secret: Option<&str>,
    table: &FunctionTable,
    now_unix_s: u64,
) -> Result<Associations, UpdateError> {
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or(UpdateError::NoSecret)?;
    let body: Body = serde_json::from_slice(body).map_err(|_| UpdateError::InvalidJwt)?;
    let mut validation = Validation::new(Algorithm::HS256);
    // The CLI's tokens carry `iat` and no `exp`; `exp` is checked below with the shard's clock.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = decode::<serde_json::Value>(
        &body.token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|_| UpdateError::InvalidJwt)?
    .claims;
    let expired = claims
        .get("exp")
        .and_then(serde_json::Value::as_f64)
        .is_some_and(|exp| exp <= now_unix_s as f64);
    if expired {
        return Err(UpdateError::InvalidJwt);
    }
    Associations::from_value(&claims, table).map_err(UpdateError::Invalid)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::{json, Value};

    const NOW: u64 = 1_700_000_000;

    fn body(claims: Value, secret: &str, alg: Algorithm) -> Vec<u8> {
        let token = encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        serde_json::to_vec(&json!({ "token": token })).unwrap()
    }

    fn doc() -> Value {
        json!({"applications":{"a":{"channels":[{"channelName":"c","functionNames":["f"]}]}},
               "iat": NOW})
    }

    #[test]
    fn a_token_signed_with_the_secret_carries_the_associations() {
        let table = FunctionTable::parse("f=http://127.0.0.1:9/f").unwrap();
        let a = verify_update(&body(doc(), "s", Algorithm::HS256), Some("s"), &table, NOW).unwrap();
        assert!(a.pipeline("a", "c1").is_some());
    }

    #[test]
    fn forged_expired_and_malformed_updates_are_invalid_jwt() {
        let table = FunctionTable::parse("f=http://127.0.0.1:9/f").unwrap();
        let mut expired = doc();
        expired["exp"] = json!(NOW - 1);
        for bad in [
            body(doc(), "other", Algorithm::HS256),
            body(doc(), "s", Algorithm::HS384),
            body(expired, "s", Algorithm::HS256),
            b"{}".to_vec(),
            b"not json".to_vec(),
            br#"{"token":"a.b.c"}"#.to_vec(),
        ] {
            let err = verify_update(&bad, Some("s"), &table, NOW).unwrap_err();
            assert_eq!(err, UpdateError::InvalidJwt);
            assert_eq!((err.status(), err.text().as_str()), (400, "Invalid JWT"));
        }
        let good = body(doc(), "s", Algorithm::HS256);
        assert_eq!(
            verify_update(&good, None, &table, NOW)
                .unwrap_err()
                .status(),
            403
        );
        let unknown = FunctionTable::default();
        let err = verify_update(&good, Some("s"), &unknown, NOW).unwrap_err();
        assert!(
            err.text().starts_with("Invalid associations: "),
            "{}",
            err.text()
        );
    }
}
