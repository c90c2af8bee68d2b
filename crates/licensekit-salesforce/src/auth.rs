//! Salesforce server-to-server auth (spec §3): OAuth2 client credentials (My Domain host only),
//! the JWT bearer flow, or a session the caller already has. Tokens carry no expiry: they are
//! re-fetched once on 401 `INVALID_SESSION_ID` (§2.8). Every answer names the `instance_url` the
//! API calls must go to.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use licensekit_core::raw::client::credential::{
    TokenEndpoint, request_error, send_token_request, token_error,
};
use licensekit_core::raw::client::{AccessToken, TokenSource};
use licensekit_core::{Error, ProviderKind, Result};
use secrecy::{ExposeSecret, SecretString};

use crate::wire::TokenResponse;

const KIND: ProviderKind = crate::KIND;

/// Which grant to run, and where.
#[derive(Clone)]
pub(crate) enum Grant {
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: SecretString,
    },
    JwtBearer {
        token_url: String,
        client_id: String,
        username: String,
        private_key_pem: SecretString,
        audience: String,
    },
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::ClientCredentials {
                token_url,
                client_id,
                ..
            } => f
                .debug_struct("ClientCredentials")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("client_secret", &"[REDACTED]")
                .finish(),
            Grant::JwtBearer {
                token_url,
                client_id,
                username,
                audience,
                ..
            } => f
                .debug_struct("JwtBearer")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("username", username)
                .field("audience", audience)
                .field("private_key_pem", &"[REDACTED]")
                .finish(),
        }
    }
}

/// Runs the grant; remembers the latest `instance_url`.
#[derive(Debug)]
pub(crate) struct SalesforceTokenSource {
    grant: Grant,
    http: reqwest::Client,
    instance_url: Arc<Mutex<Option<String>>>,
    /// The org id from the last token response's identity URL (`…/id/{org id}/{user id}`).
    org_id: Arc<Mutex<Option<String>>>,
}

impl SalesforceTokenSource {
    pub(crate) fn new(grant: Grant, http: reqwest::Client) -> Self {
        // Known secrets are redacted from any vendor text that echoes them (issue 13, item 8).
        match &grant {
            Grant::ClientCredentials { client_secret, .. } => {
                licensekit_core::error::redact::register(client_secret.expose_secret())
            }
            Grant::JwtBearer {
                private_key_pem, ..
            } => licensekit_core::error::redact::register(private_key_pem.expose_secret()),
        }
        SalesforceTokenSource {
            grant,
            http,
            instance_url: Arc::new(Mutex::new(None)),
            org_id: Arc::new(Mutex::new(None)),
        }
    }

    /// The org id named by the last token response's `id` (the identity URL), if it had one.
    pub(crate) fn org_id(&self) -> Option<String> {
        self.org_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The `instance_url` of the last token response.
    pub(crate) fn instance_url(&self) -> Option<String> {
        self.instance_url
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn client_credentials(
        &self,
        token_url: &str,
        client_id: &str,
        client_secret: &SecretString,
    ) -> Result<TokenResponse> {
        use oauth2::basic::{
            BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
            BasicTokenType,
        };
        use oauth2::{
            AuthType, ClientId, ClientSecret, StandardRevocableToken, StandardTokenResponse,
            TokenResponse as _, TokenUrl,
        };

        /// Salesforce adds `instance_url`, `id`, `issued_at` to the standard token response.
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        struct Extra {
            instance_url: String,
            #[serde(default)]
            id: Option<String>,
            #[serde(default)]
            issued_at: Option<String>,
        }
        impl oauth2::ExtraTokenFields for Extra {}

        type Client = oauth2::Client<
            BasicErrorResponse,
            StandardTokenResponse<Extra, BasicTokenType>,
            BasicTokenIntrospectionResponse,
            StandardRevocableToken,
            BasicRevocationErrorResponse,
        >;

        let token_url = TokenUrl::new(token_url.to_owned()).map_err(|e| Error::Config {
            message: format!("salesforce: invalid token URL `{token_url}`"),
            source: Some(Box::new(e)),
        })?;
        let client = Client::new(ClientId::new(client_id.to_owned()))
            .set_client_secret(ClientSecret::new(client_secret.expose_secret().to_owned()))
            .set_token_uri(token_url)
            // Basic auth is one of the two documented ways (§3.2).
            .set_auth_type(AuthType::BasicAuth);
        // Failures are classified like API calls: 429/5xx are retried by the request that
        // needed the token; only 400/401 are `Unauthenticated` (issue 13, item 4).
        let endpoint = TokenEndpoint::new(KIND, self.http.clone());
        let send = endpoint.sender();
        let response = client
            .exchange_client_credentials()
            .request_async(&send)
            .await
            .map_err(|e| endpoint.error(e))?;
        let extra = response.extra_fields();
        Ok(TokenResponse {
            access_token: response.access_token().secret().to_owned(),
            instance_url: extra.instance_url.clone(),
            id: extra.id.clone(),
            token_type: Some("Bearer".into()),
            issued_at: extra.issued_at.clone(),
        })
    }

    /// JWT bearer (§3.3): an RS256 assertion with iss = consumer key, sub = username, aud = login
    /// host, exp within 3 minutes, POSTed as a form (the oauth2 crate has no JWT grant).
    async fn jwt_bearer(
        &self,
        token_url: &str,
        client_id: &str,
        username: &str,
        private_key_pem: &SecretString,
        audience: &str,
    ) -> Result<TokenResponse> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            exp: u64,
        }
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
                .map_err(|_| {
                    Error::config(
                        "salesforce: private_key_pem is not an RSA private key in PEM form",
                    )
                })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims {
            iss: client_id,
            sub: username,
            aud: audience,
            exp: now + 170,
        };
        let assertion = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .map_err(|e| Error::Config {
            message: "salesforce: could not sign the JWT assertion".into(),
            source: Some(Box::new(e)),
        })?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let request = self
            .http
            .post(token_url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .build()
            .map_err(|e| Error::Config {
                message: "salesforce: could not build the token request".into(),
                source: Some(Box::new(e.without_url())),
            })?;
        // Read within the token-response size limit; failures classified like API calls.
        let answer = send_token_request(&self.http, request)
            .await
            .map_err(|e| request_error(KIND, e))?;
        if !answer.status.is_success() {
            return Err(token_error(KIND, &answer));
        }
        let bytes = answer.body;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            provider: KIND,
            message: "the token endpoint's answer lacks access_token or instance_url".into(),
            source: Some(Box::new(e)),
        })
    }
}

#[async_trait]
impl TokenSource for SalesforceTokenSource {
    async fn fetch(&self) -> Result<AccessToken> {
        let span = tracing::debug_span!(
            "salesforce_token",
            grant = match self.grant {
                Grant::ClientCredentials { .. } => "client_credentials",
                Grant::JwtBearer { .. } => "jwt_bearer",
            }
        );
        let _guard = span.enter();
        let response = match &self.grant {
            Grant::ClientCredentials {
                token_url,
                client_id,
                client_secret,
            } => {
                self.client_credentials(token_url, client_id, client_secret)
                    .await?
            }
            Grant::JwtBearer {
                token_url,
                client_id,
                username,
                private_key_pem,
                audience,
            } => {
                self.jwt_bearer(token_url, client_id, username, private_key_pem, audience)
                    .await?
            }
        };
        if let Some(org) = response.id.as_deref().and_then(org_of_identity_url) {
            *self.org_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(org);
        }
        *self.instance_url.lock().unwrap_or_else(|p| p.into_inner()) = Some(response.instance_url);
        // Salesforce tokens carry no lifetime: kept until a 401 says otherwise.
        Ok(AccessToken::new(
            SecretString::from(response.access_token),
            None,
        ))
    }
}

/// The org id in a token response's identity URL: `https://login.salesforce.com/id/{org}/{user}`.
pub(crate) fn org_of_identity_url(url: &str) -> Option<String> {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let _user = parts.next()?;
    let org = parts.next()?;
    (parts.next()? == "id" && !org.is_empty()).then(|| org.to_owned())
}

#[cfg(test)]
mod tests {
    use super::org_of_identity_url;

    #[test]
    fn the_org_id_is_read_from_the_identity_url() {
        assert_eq!(
            org_of_identity_url(
                "https://login.salesforce.com/id/00D5g000004XyZ1EAK/0055g00000A1b2CAAR"
            )
            .as_deref(),
            Some("00D5g000004XyZ1EAK")
        );
        assert_eq!(org_of_identity_url("https://acme.my.salesforce.com/"), None);
        assert_eq!(org_of_identity_url("00D5g000004XyZ1EAK"), None);
    }
}
