//! The Ekko token a Socket.IO client joins a namespace with: a JWT, HS256 only, signed with the
//! app's secret or the server-wide JWT secret, whose `appName` must name the namespace's app
//! and whose `exp`, when present, must not have passed (`docs/socketio.md`).
//!
//! The signature is checked by `jsonwebtoken`; the time is the shard's (an argument, so the
//! core reads no clock), which is why `exp` is checked here and not by the library.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The token's `admin` claim: joins the `admin` room, may subscribe to it.
    pub admin: bool,
}

/// Why a token was refused (the client only ever hears "Authorization error").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT, not HS256, or no secret verifies its signature.
    BadSignature,
    /// `appName` is missing or names another app.
    WrongApp,
    /// `exp` has passed.
    Expired,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(rename = "appName")]
    app_name: Option<String>,
    #[serde(default)]
    admin: bool,
    exp: Option<f64>,
}

/// Verifies `token` for the app `app_id` at `now_unix_s`, trying each secret in turn.
pub fn verify(
    token: &str,
    secrets: &[&str],
    app_id: &str,
    now_unix_s: u64,
) -> Result<Grant, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Ekko's tokens carry `{appName, admin, iat}` and no `exp`; `exp` is checked below with
    // the shard's clock when present.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = secrets
        .iter()
        .filter(|s| !s.is_empty())
        .find_map(|secret| {
            decode::<Claims>(
                token,
                &DecodingKey::from_secret(secret.as_bytes()),
                &validation,
            )
            .ok()
        })
        .ok_or(TokenError::BadSignature)?
        .claims;
    if claims.app_name.as_deref() != Some(app_id) {
        return Err(TokenError::WrongApp);
    }
    if claims.exp.is_some_and(|exp| exp <= now_unix_s as f64) {
        return Err(TokenError::Expired);
    }
    Ok(Grant {
        admin: claims.admin,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::{json, Value};

    const NOW: u64 = 1_700_000_000;

    fn token(claims: Value, secret: &str, alg: Algorithm) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn ekko_tokens_of_the_app_or_the_server_secret() {
        let t = token(
            json!({"appName":"app1","admin":false,"iat":NOW}),
            "s3cret",
            Algorithm::HS256,
        );
        assert_eq!(
            verify(&t, &["s3cret"], "app1", NOW),
            Ok(Grant { admin: false })
        );
        assert_eq!(
            verify(&t, &["other", "s3cret"], "app1", NOW),
            Ok(Grant { admin: false })
        );
        let admin = token(
            json!({"appName":"app1","admin":true}),
            "s3cret",
            Algorithm::HS256,
        );
        assert_eq!(
            verify(&admin, &["s3cret"], "app1", NOW),
            Ok(Grant { admin: true })
        );
    }

    #[test]
    fn forged_expired_and_foreign_tokens_are_refused() {
        let t = token(json!({"appName":"app1"}), "s3cret", Algorithm::HS256);
        assert_eq!(
            verify(&t, &["wrong"], "app1", NOW),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(&t, &[""], "app1", NOW),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(&t, &["s3cret"], "app2", NOW),
            Err(TokenError::WrongApp)
        );
        let none = token(json!({"admin":true}), "s3cret", Algorithm::HS256);
        assert_eq!(
            verify(&none, &["s3cret"], "app1", NOW),
            Err(TokenError::WrongApp)
        );
        let expired = token(
            json!({"appName":"app1","exp":NOW}),
            "s3cret",
            Algorithm::HS256,
        );
        assert_eq!(
            verify(&expired, &["s3cret"], "app1", NOW),
            Err(TokenError::Expired)
        );
        let later = token(
            json!({"appName":"app1","exp":NOW + 60}),
            "s3cret",
            Algorithm::HS256,
        );
        assert_eq!(
            verify(&later, &["s3cret"], "app1", NOW),
            Ok(Grant { admin: false })
        );
        // HS256 is pinned: the same secret under HS512 does not pass.
        let hs512 = token(json!({"appName":"app1"}), "s3cret", Algorithm::HS512);
        assert_eq!(
            verify(&hs512, &["s3cret"], "app1", NOW),
            Err(TokenError::BadSignature)
        );
        // `alg: none` and garbage.
        let unsigned = format!(
            "{}.{}.",
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0", "eyJhcHBOYW1lIjoiYXBwMSJ9"
        );
        assert_eq!(
            verify(&unsigned, &["s3cret"], "app1", NOW),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify("not a jwt", &["s3cret"], "app1", NOW),
            Err(TokenError::BadSignature)
        );
    }
}
