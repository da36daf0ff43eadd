//! Sign-in, sessions, lockout, CSRF and TOTP over real HTTP. Time moves through the
//! server's clock (an offset clock), never by sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestApp, PASSWORD};
use serde_json::{json, Value};
use std::time::Duration;
use tandem_domain::Role;
use tandem_server::WebConfig;
use tandem_store::Store;

async fn json_login(t: &TestApp, c: &reqwest::Client, user: &str, pw: &str) -> reqwest::Response {
    c.post(t.url("/login"))
        .json(&json!({"username": user, "password": pw}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn form_sign_in_sets_a_strict_http_only_cookie_and_redirects() {
    let t = common::start().await;
    t.user("pat", Role::Patient).await;
    let c = common::browser();
    let r = c
        .post(t.url("/login"))
        .form(&[("username", "pat"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("tandem_session="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag");
    // The home page sends a patient to the chat.
    let home = c.get(t.url("/")).send().await.unwrap();
    assert_eq!(home.headers()["location"], "/chat");
    let chat = c.get(t.url("/chat")).send().await.unwrap();
    assert_eq!(chat.status(), 200);

    // Behind a TLS proxy the cookie is Secure.
    let r = common::browser()
        .post(t.url("/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("username", "pat"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));

    // A wrong password shows the form again with a message, and no cookie.
    let r = common::browser()
        .post(t.url("/login"))
        .form(&[("username", "pat"), ("password", "wrong password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("did not match"));
}

#[tokio::test]
async fn the_store_keeps_only_a_hash_of_the_session_token() {
    let t = common::start().await;
    t.user("pat", Role::Patient).await;
    let s = t.login("pat").await;
    assert!(t.store.session(&s.token).await.unwrap().is_none());
    let hashed = tandem_server::auth::hash_token(&s.token);
    assert!(t.store.session(&hashed).await.unwrap().is_some());
}

#[tokio::test]
async fn sign_out_ends_the_session_for_cookie_and_bearer_alike() {
    let t = common::start().await;
    t.user("pat", Role::Patient).await;
    let s = t.login("pat").await;
    assert_eq!(s.get("/api/v1/me").send().await.unwrap().status(), 200);
    let bearer = reqwest::Client::new();
    let me = bearer
        .get(t.url("/api/v1/me"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let out = s.post("/logout").send().await.unwrap();
    assert_eq!(out.status(), 204);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(s.get("/api/v1/me").send().await.unwrap().status(), 401);
    let me = bearer
        .get(t.url("/api/v1/me"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    // Pages send a signed-out visitor to the sign-in page.
    let page = s.get("/chat").send().await.unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login");
}

#[tokio::test]
async fn five_failures_lock_the_name_and_the_lock_doubles() {
    let t = common::start().await;
    t.user("pat", Role::Patient).await;
    let c = common::browser();
    for _ in 0..5 {
        assert_eq!(
            json_login(&t, &c, "pat", "wrong password").await.status(),
            401
        );
    }
    // Locked: even the right password is refused, without checking it.
    let r = json_login(&t, &c, "pat", PASSWORD).await;
    assert_eq!(r.status(), 429);
    let retry: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    t.clock.advance(Duration::from_secs(31));
    // One more failure after the lock: locked again, for twice as long.
    assert_eq!(
        json_login(&t, &c, "pat", "wrong password").await.status(),
        401
    );
    let r = json_login(&t, &c, "pat", PASSWORD).await;
    assert_eq!(r.status(), 429);
    let retry: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((31..=60).contains(&retry), "{retry}");
    t.clock.advance(Duration::from_secs(61));
    assert_eq!(json_login(&t, &c, "pat", PASSWORD).await.status(), 200);
    // Success clears the count.
    assert_eq!(t.store.login_state("pat").await.unwrap().failures, 0);

    // Unknown names lock the same way, so lockout does not reveal which accounts exist.
    for _ in 0..5 {
        assert_eq!(json_login(&t, &c, "nobody", "whatever").await.status(), 401);
    }
    assert_eq!(json_login(&t, &c, "nobody", "whatever").await.status(), 429);
}

#[tokio::test]
async fn cookie_requests_need_the_csrf_token_and_bearer_requests_do_not() {
    let t = common::start().await;
    t.user("pat", Role::Patient).await;
    let s = t.login("pat").await;
    let mood = json!({"rating": 6, "words": ["calm"]});
    let r = s
        .client
        .post(t.url("/api/v1/mood"))
        .json(&mood)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no token");
    let r = s
        .client
        .post(t.url("/api/v1/mood"))
        .header("x-csrf-token", "not-the-token")
        .json(&mood)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "wrong token");
    assert_eq!(
        s.post("/api/v1/mood")
            .json(&mood)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    // Forms carry the token as a field.
    let r = s
        .client
        .post(t.url("/logout"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        s.get("/api/v1/me").send().await.unwrap().status(),
        200,
        "still signed in"
    );
    // Scripts with the bearer token need no CSRF token (browsers never send it by themselves).
    let r = reqwest::Client::new()
        .post(t.url("/api/v1/mood"))
        .bearer_auth(&s.token)
        .json(&mood)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = s
        .client
        .post(t.url("/logout"))
        .form(&[("csrf", s.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(s.get("/api/v1/me").send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn sessions_end_after_the_idle_timeout_and_the_absolute_lifetime() {
    let t = common::start().await;
    t.user("pat", Role::Patient).await;
    let s = t.login("pat").await;
    // Activity keeps it alive...
    for _ in 0..3 {
        t.clock.advance(Duration::from_secs(29 * 60));
        assert_eq!(s.get("/api/v1/me").send().await.unwrap().status(), 200);
    }
    // ...30 idle minutes end it.
    t.clock.advance(Duration::from_secs(30 * 60));
    assert_eq!(s.get("/api/v1/me").send().await.unwrap().status(), 401);

    let short = WebConfig {
        absolute_lifetime: Duration::from_secs(60 * 60),
        ..WebConfig::default()
    };
    let fake = std::sync::Arc::new(tandem_model::fake::FakeBackend::always("ok"));
    let t = common::start_with(fake.clone(), fake, short).await;
    t.user("pat", Role::Patient).await;
    let s = t.login("pat").await;
    for _ in 0..2 {
        t.clock.advance(Duration::from_secs(25 * 60));
        assert_eq!(s.get("/api/v1/me").send().await.unwrap().status(), 200);
    }
    t.clock.advance(Duration::from_secs(11 * 60));
    assert_eq!(
        s.get("/api/v1/me").send().await.unwrap().status(),
        401,
        "past the absolute lifetime despite activity"
    );
}

fn code_at(uri: &str, ms: i64) -> String {
    let totp = totp_rs::TOTP::from_url(uri).unwrap();
    totp.generate(u64::try_from(ms / 1000).unwrap())
}

#[tokio::test]
async fn staff_with_totp_must_enter_a_code_and_codes_are_not_replayed() {
    let t = common::start().await;
    t.user("clin", Role::Clinician).await;
    let s = t.login("clin").await;
    let enrol: Value = s
        .post("/api/v1/me/totp")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uri = enrol["otpauth_uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("otpauth://totp/Tandem:clin?"), "{uri}");
    let r = s
        .post("/api/v1/me/totp/confirm")
        .json(&json!({"code": code_at(&uri, t.state.now_ms())}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(s.json("/api/v1/me").await["totp_enrolled"], true);

    // A new sign-in stops at the second factor.
    let c = common::browser();
    let body: Value = json_login(&t, &c, "clin", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["mfa_required"], true);
    let me = c.get(t.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), 401);
    assert_eq!(me.json::<Value>().await.unwrap()["mfa_required"], true);
    let page = c.get(t.url("/clinician")).send().await.unwrap();
    assert_eq!(page.headers()["location"], "/login/totp");
    let csrf = body["csrf_token"].as_str().unwrap();
    // The code already used to confirm is refused (replay), as is a wrong one.
    let same = code_at(&uri, t.state.now_ms());
    for code in [same.as_str(), "000000x"] {
        let r = c
            .post(t.url("/login/totp"))
            .header("x-csrf-token", csrf)
            .json(&json!({"code": code}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "code {code}");
    }
    let next = code_at(&uri, t.state.now_ms() + 30_000);
    let r = c
        .post(t.url("/login/totp"))
        .header("x-csrf-token", csrf)
        .json(&json!({"code": next}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        c.get(t.url("/api/v1/me")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn disabled_accounts_lose_their_sessions_and_cannot_sign_in() {
    let t = common::start().await;
    t.user("admin", Role::Admin).await;
    let clin = t.user("clin", Role::Clinician).await;
    let a = t.login("admin").await;
    let c = t.login("clin").await;
    let r = a
        .post(&format!("/api/v1/admin/users/{}/disable", clin.id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.get("/api/v1/me").send().await.unwrap().status(), 401);
    let r = json_login(&t, &common::browser(), "clin", PASSWORD).await;
    assert_eq!(r.status(), 401);
    // Admins see accounts, never clinical content.
    let users = a.json("/api/v1/admin/users").await;
    assert_eq!(users["users"].as_array().unwrap().len(), 2);
    assert_eq!(
        a.get("/api/v1/patients").send().await.unwrap().status(),
        403
    );
}
