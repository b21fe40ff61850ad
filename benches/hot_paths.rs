//! Microbenchmarks of tessera's hot paths, through its own code:
//! `cargo bench`. docs/benchmarks.md explains how to read them next to the
//! load benchmark.

#![expect(
    clippy::expect_used,
    reason = "a benchmark fails loudly on a broken fixture"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera::config::SigningAlgorithm;
use tessera::domain::{
    Client, ClientId, ClientType, GrantType, PkceChallenge, ScopeSet, SecretToken, TokenDigest,
};
use tessera::oauth::keys::{AccessClaims, Audience, KeySet};

const ISSUER: &str = "https://auth.example";

fn claims() -> AccessClaims {
    let now = tessera::domain::now();
    AccessClaims {
        iss: ISSUER.to_owned(),
        sub: "0d9f6a4e-7c1b-4a55-9a57-1d2f0c3b8e71".to_owned(),
        aud: Audience::One("https://api.example".to_owned()),
        client_id: "q3Vb8S1xM0mYx2kTqL9w1A".to_owned(),
        scope: "openid profile offline_access".to_owned(),
        jti: "7a1f0f5e-9d0c-4f7e-8a51-3b8f2a6c9d10".to_owned(),
        iat: now,
        nbf: now,
        exp: now + 600,
        gid: "c2d8f3a1-5b6e-4c7d-8e9f-0a1b2c3d4e5f".to_owned(),
    }
}

fn signing(c: &mut Criterion) {
    for algorithm in [
        SigningAlgorithm::ES256,
        SigningAlgorithm::EdDSA,
        SigningAlgorithm::RS256,
    ] {
        let keys = KeySet::ephemeral(&[algorithm]).expect("keys");
        let claims = claims();
        c.bench_function(&format!("sign access token {}", algorithm.as_str()), |b| {
            b.iter(|| keys.sign_access_token(black_box(&claims)).expect("signs"))
        });
        let token = keys.sign_access_token(&claims).expect("signs");
        c.bench_function(
            &format!("verify access token {}", algorithm.as_str()),
            |b| {
                b.iter(|| {
                    keys.verify_access_token(black_box(&token), ISSUER, 5)
                        .expect("verifies")
                })
            },
        );
    }
}

fn client_secret(c: &mut Criterion) {
    let secret = SecretToken::generate().expect("random");
    let client = Client {
        id: ClientId::from_stored("q3Vb8S1xM0mYx2kTqL9w1A".to_owned()),
        name: "Bench".to_owned(),
        client_type: ClientType::Confidential,
        secret_hash: Some(secret.digest().as_str().to_owned()),
        redirect_uris: Vec::new(),
        allowed_scopes: ScopeSet::from_tokens(["profile"]),
        grant_types: vec![GrantType::ClientCredentials],
        homepage_uri: None,
        logo_uri: None,
        policy_uri: None,
        tos_uri: None,
        verified: false,
        first_party: false,
        always_issue_refresh_token: false,
        access_token_ttl_secs: None,
        owner_user_id: None,
        disabled: false,
        created_at: 0,
        introspection_audience: None,
        post_logout_redirect_uris: Vec::new(),
        description: None,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        registration_token_hash: None,
        token_endpoint_auth_method: None,
    };
    let presented = secret.expose().to_owned();
    c.bench_function("client secret check (SHA-256, constant time)", |b| {
        b.iter(|| {
            let digest = TokenDigest::of(black_box(presented.as_bytes()));
            assert!(client.secret_matches(digest.as_str(), 0));
        })
    });
}

fn pkce(c: &mut Criterion) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge =
        PkceChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Some("S256"))
            .expect("valid");
    c.bench_function("PKCE S256 check", |b| {
        b.iter(|| challenge.verify(black_box(verifier)).expect("well-formed"))
    });
}

fn token_response(c: &mut Criterion) {
    let keys = KeySet::ephemeral(&[SigningAlgorithm::ES256]).expect("keys");
    let token = keys.sign_access_token(&claims()).expect("signs");
    c.bench_function("token response JSON", |b| {
        b.iter(|| {
            let mut body = serde_json::Map::new();
            body.insert(
                "access_token".into(),
                serde_json::Value::from(black_box(token.as_str())),
            );
            body.insert("token_type".into(), serde_json::Value::from("Bearer"));
            body.insert("expires_in".into(), serde_json::Value::from(600));
            body.insert("scope".into(), serde_json::Value::from("profile"));
            serde_json::to_string(&body).expect("serialises")
        })
    });
}

fn introspection_decision(c: &mut Criterion) {
    let keys = KeySet::ephemeral(&[SigningAlgorithm::ES256]).expect("keys");
    let token = keys.sign_access_token(&claims()).expect("signs");
    c.bench_function(
        "introspection decision without the database (verify + visibility)",
        |b| {
            b.iter(|| {
                let claims = keys
                    .verify_access_token(black_box(&token), ISSUER, 5)
                    .expect("verifies");
                assert!(claims.aud.contains("https://api.example"));
            })
        },
    );
}

criterion_group!(
    benches,
    signing,
    client_secret,
    pkce,
    token_response,
    introspection_decision
);
criterion_main!(benches);
