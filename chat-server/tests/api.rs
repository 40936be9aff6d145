//! The HTTP contract, case by case, over real HTTP on a loopback port, against every store.

#[macro_use]
mod common;

use common::{Backing, Kind, Server};

store_tests!(
    accounts,
    tokens,
    conversations,
    conversation_paging,
    messages,
    message_paging_by_link,
    concurrent_appends,
    attachments,
    providers,
    configs,
    foreign_ids,
    protocol,
    body_limits,
    query_validation,
    operations,
    malformed_input,
    ids_only_in_lower_case,
    logins_with_impossible_names,
);

mod cases {
    use chat_core::accounts::{BearerToken, token_hash};
    use chat_core::{Caller, ProviderId, Session, SessionId, UserId};
    use serde_json::{Value, json};

    use crate::common::{Server, raw_exchange};

    const BOGUS: &str = "01890000-0000-7000-8000-000000000000";

    fn uuid_of(v: &Value) -> String {
        v["id"].as_str().unwrap().to_owned()
    }

    pub async fn accounts(s: &Server) {
        let c = s.client();
        let r = c
            .post(
                "/users",
                json!({"username": "Ada", "password": "correct horse", "email": "ada@example.com", "extra": 1}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert!(r.header("location").is_none());
        let user = r.json();
        assert_eq!(user["username"], "Ada");
        assert_eq!(user["email"], "ada@example.com");
        let keys: Vec<_> = user.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 4, "{user}");
        for k in ["id", "username", "email", "created_at"] {
            assert!(user.get(k).is_some(), "{k} in {user}");
        }
        assert!(!r.text().contains("argon2"));

        // Taken ignoring case.
        c.post(
            "/users",
            json!({"username": "ADA", "password": "another one"}),
        )
        .await
        .assert_error(409, "conflict", Some("username"));
        c.post(
            "/users",
            json!({"username": "a", "password": "correct horse"}),
        )
        .await
        .assert_error(400, "invalid_input", Some("username"));
        c.post("/users", json!({"username": "bob", "password": "short"}))
            .await
            .assert_error(400, "invalid_input", Some("password"));
        c.post(
            "/users",
            json!({"username": "bob", "password": "long enough", "email": "no-at-sign"}),
        )
        .await
        .assert_error(400, "invalid_input", Some("email"));
        // null is absent.
        let r = c
            .post(
                "/users",
                json!({"username": "bob", "password": "long enough", "email": null}),
            )
            .await;
        assert_eq!(r.status, 201);
        assert_eq!(r.json()["email"], Value::Null);

        // Login, matched ignoring case.
        let r = c
            .post(
                "/users/login",
                json!({"username": "ada", "password": "correct horse"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let login = r.json();
        assert_eq!(login["token_type"], "Bearer");
        assert_eq!(login["user_id"], user["id"]);
        assert!(login["expires_at"].as_str().unwrap().ends_with('Z'));
        let token = login["token"].as_str().unwrap();
        assert!(token.len() >= 43);

        // Wrong credentials: one answer whether or not the user exists.
        let wrong = c
            .post(
                "/users/login",
                json!({"username": "ada", "password": "wrong password"}),
            )
            .await;
        wrong.assert_error(401, "unauthorized", None);
        assert_eq!(wrong.header("www-authenticate"), Some("Bearer"));
        let nobody = c
            .post(
                "/users/login",
                json!({"username": "nobody", "password": "wrong password"}),
            )
            .await;
        nobody.assert_error(401, "unauthorized", None);
        assert_eq!(
            wrong.json()["error"]["message"],
            nobody.json()["error"]["message"]
        );
        c.post("/users/login", json!({"username": "ada"}))
            .await
            .assert_error(400, "invalid_input", Some("password"));

        // Me and logout.
        let me = c.with_token(token).get("/users/me").await;
        assert_eq!(me.status, 200);
        assert_eq!(me.json(), user);
        let out = c
            .with_token(token)
            .send("POST", "/users/logout", &[], None)
            .await;
        assert_eq!(out.status, 204);
        assert!(out.body.is_empty());
        let after = c.with_token(token).get("/users/me").await;
        after.assert_error(401, "unauthorized", None);
        c.with_token(token)
            .send("POST", "/users/logout", &[], None)
            .await
            .assert_error(401, "unauthorized", None);
    }

    pub async fn tokens(s: &Server) {
        let ada = s.user("ada").await;
        let c = s.client();
        // Missing, malformed, forged.
        let r = c.get("/users/me").await;
        r.assert_error(401, "unauthorized", None);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        for auth in [
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            "Basic dXNlcjpwYXNz".to_owned(),
            format!("Token {}", ada.token),
            "Bearer not-a-token".to_owned(),
            format!("Bearer {}", "0".repeat(64)),
            format!("Bearer {}x", ada.token),
        ] {
            let r = c
                .send(
                    "GET",
                    "/chat/conversations",
                    &[("authorization", &auth)],
                    None,
                )
                .await;
            r.assert_error(401, "unauthorized", None);
        }
        // The scheme is case-insensitive.
        let r = c
            .send(
                "GET",
                "/users/me",
                &[("authorization", &format!("bearer {}", ada.token))],
                None,
            )
            .await;
        assert_eq!(r.status, 200);

        // Expired: a session whose time has passed, planted in the store.
        let token = BearerToken::generate();
        let now = chat_core::time::now();
        let session = Session {
            id: SessionId::new(),
            user_id: ada.id.parse::<UserId>().unwrap(),
            token_hash: token_hash(token.expose_secret()),
            created_at: now - chrono::Duration::days(8),
            expires_at: now - chrono::Duration::days(1),
        };
        s.app
            .service()
            .store()
            .create_session(&session)
            .await
            .unwrap();
        c.with_token(token.expose_secret())
            .get("/users/me")
            .await
            .assert_error(401, "unauthorized", None);

        // Revoked: logging out one token leaves another working.
        let second = s
            .client()
            .post(
                "/users/login",
                json!({"username": "ada", "password": "password-of-ada"}),
            )
            .await
            .json()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            ada.client
                .send("POST", "/users/logout", &[], None)
                .await
                .status,
            204
        );
        ada.client
            .get("/chat/conversations")
            .await
            .assert_error(401, "unauthorized", None);
        assert_eq!(
            c.with_token(&second)
                .get("/chat/conversations")
                .await
                .status,
            200
        );
    }

    pub async fn conversations(s: &Server) {
        let ada = s.user("ada").await;
        let c = &ada.client;
        let r = c
            .post("/chat/conversations", json!({"title": "  Lisbon  "}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let conv = r.json();
        let id = uuid_of(&conv);
        assert_eq!(
            r.header("location").unwrap(),
            format!("/chat/conversations/{id}")
        );
        assert_eq!(conv["title"], "Lisbon");
        assert_eq!(conv["user_id"], ada.id.as_str());
        assert_eq!(conv["message_count"], 0);
        assert_eq!(conv["created_at"], conv["updated_at"]);
        assert_eq!(conv.as_object().unwrap().len(), 6);

        // user_id: own or null is fine, another is 403.
        let r = c
            .post(
                "/chat/conversations",
                json!({"title": "Porto", "user_id": ada.id}),
            )
            .await;
        assert_eq!(r.status, 201);
        let porto = uuid_of(&r.json());
        let r = c
            .post(
                "/chat/conversations",
                json!({"title": "Faro", "user_id": null}),
            )
            .await;
        assert_eq!(r.status, 201);
        c.post(
            "/chat/conversations",
            json!({"title": "x", "user_id": BOGUS}),
        )
        .await
        .assert_error(403, "forbidden", Some("user_id"));
        c.post(
            "/chat/conversations",
            json!({"title": "x", "user_id": "nope"}),
        )
        .await
        .assert_error(400, "invalid_input", Some("user_id"));
        // A 400 comes before a 403.
        c.post(
            "/chat/conversations",
            json!({"title": "", "user_id": BOGUS}),
        )
        .await
        .assert_error(400, "invalid_input", Some("title"));
        for bad in [
            json!({}),
            json!({"title": null}),
            json!({"title": 5}),
            json!({"title": "a\nb"}),
            json!({"title": "x".repeat(201)}),
        ] {
            c.post("/chat/conversations", bad).await.assert_error(
                400,
                "invalid_input",
                Some("title"),
            );
        }

        let r = c.get(&format!("/chat/conversations/{id}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), conv);

        // Listed newest first.
        let list = c.get("/chat/conversations").await;
        assert_eq!(list.status, 200);
        assert!(list.header("link").is_none());
        let titles: Vec<_> = list
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["title"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(titles, ["Faro", "Porto", "Lisbon"]);

        // Rename.
        let r = c
            .patch(
                &format!("/chat/conversations/{id}"),
                json!({"title": "Lisboa"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["title"], "Lisboa");
        assert!(r.json()["updated_at"].as_str() >= conv["updated_at"].as_str());
        c.patch(&format!("/chat/conversations/{id}"), json!({}))
            .await
            .assert_error(400, "invalid_input", Some("title"));
        c.patch(
            &format!("/chat/conversations/{BOGUS}"),
            json!({"title": "x"}),
        )
        .await
        .assert_error(404, "not_found", None);

        // Delete.
        let r = c.delete(&format!("/chat/conversations/{porto}")).await;
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
        c.get(&format!("/chat/conversations/{porto}"))
            .await
            .assert_error(404, "not_found", None);
        c.delete(&format!("/chat/conversations/{porto}"))
            .await
            .assert_error(404, "not_found", None);
        c.get("/chat/conversations/not-a-uuid").await.assert_error(
            400,
            "invalid_input",
            Some("id"),
        );
        c.get(&format!(
            "/chat/conversations/{}",
            BOGUS.to_uppercase().replace('-', "")
        ))
        .await
        .assert_error(400, "invalid_input", Some("id"));
    }

    pub async fn conversation_paging(s: &Server) {
        let ada = s.user("ada").await;
        let c = &ada.client;
        let mut ids = Vec::new();
        for i in 0..7 {
            let r = c
                .post("/chat/conversations", json!({"title": format!("c{i}")}))
                .await;
            ids.push(uuid_of(&r.json()));
        }
        ids.reverse();
        let mut seen = Vec::new();
        let mut next = Some("/chat/conversations?limit=3".to_owned());
        while let Some(path) = next {
            let r = c.get(&path).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let page = r.json();
            seen.extend(page.as_array().unwrap().iter().map(uuid_of));
            next = link_next(r.header("link"));
        }
        assert_eq!(seen, ids);
        // A cursor need not name an existing object.
        let r = c.get(&format!("/chat/conversations?before={BOGUS}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), json!([]));
        assert!(r.header("link").is_none());
    }

    fn link_next(link: Option<&str>) -> Option<String> {
        let link = link?;
        assert!(link.ends_with(">; rel=\"next\""), "{link}");
        let target = link.strip_prefix('<')?.split_once('>')?.0;
        assert!(target.starts_with('/'), "no scheme or host: {target}");
        Some(target.to_owned())
    }

    pub async fn messages(s: &Server) {
        let ada = s.user("ada").await;
        let c = &ada.client;
        let conv = c
            .post("/chat/conversations", json!({"title": "t"}))
            .await
            .json();
        let cid = uuid_of(&conv);
        let r = c
            .post(
                "/chat/messages",
                json!({"conversation_id": cid, "role": "user", "content": "hello\n\tworld", "metadata": {"k": [1, 2]}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let m1 = r.json();
        let mid = uuid_of(&m1);
        assert_eq!(
            r.header("location").unwrap(),
            format!("/chat/messages/{mid}")
        );
        assert_eq!(m1["seq"], 1);
        assert_eq!(m1["role"], "user");
        assert_eq!(m1["content"], "hello\n\tworld");
        assert_eq!(m1["metadata"], json!({"k": [1, 2]}));
        assert_eq!(m1["conversation_id"], cid.as_str());
        assert!(m1.get("user_id").is_none());
        assert_eq!(m1.as_object().unwrap().len(), 7);

        let r = c
            .post(
                "/chat/messages",
                json!({"conversation_id": cid, "role": "assistant", "content": "hi", "metadata": null}),
            )
            .await;
        assert_eq!(r.status, 201);
        let m2 = r.json();
        assert_eq!(m2["seq"], 2);
        assert_eq!(m2["metadata"], Value::Null);

        let conv_now = c.get(&format!("/chat/conversations/{cid}")).await.json();
        assert_eq!(conv_now["message_count"], 2);
        assert_eq!(conv_now["updated_at"], m2["created_at"]);

        assert_eq!(c.get(&format!("/chat/messages/{mid}")).await.json(), m1);

        // Validation.
        let base = json!({"conversation_id": cid, "role": "user", "content": "x"});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        for (body, field) in [
            (with("role", json!("robot")), "role"),
            (with("role", json!(null)), "role"),
            (with("content", json!("")), "content"),
            (with("content", json!("a\u{0}b")), "content"),
            (
                with("content", json!("x".repeat(256 * 1024 + 1))),
                "content",
            ),
            (with("metadata", json!([1])), "metadata"),
            (with("metadata", json!("s")), "metadata"),
            (
                with("metadata", json!({"big": "x".repeat(17 * 1024)})),
                "metadata",
            ),
            (with("conversation_id", json!("nope")), "conversation_id"),
            (with("conversation_id", json!(7)), "conversation_id"),
        ] {
            c.post("/chat/messages", body)
                .await
                .assert_error(400, "invalid_input", Some(field));
        }
        let r = c
            .post(
                "/chat/messages",
                with("content", json!("x".repeat(256 * 1024))),
            )
            .await;
        assert_eq!(r.status, 201, "content of exactly the limit is fine");
        c.post("/chat/messages", with("conversation_id", json!(BOGUS)))
            .await
            .assert_error(404, "not_found", None);

        // Lists.
        let list = c.get(&format!("/chat/conversations/{cid}/messages")).await;
        assert_eq!(list.status, 200);
        let seqs: Vec<_> = list
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        let list = c
            .get(&format!(
                "/chat/conversations/{cid}/messages?order=desc&limit=2"
            ))
            .await;
        let seqs: Vec<_> = list
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [3, 2]);
        assert_eq!(
            list.header("link").unwrap(),
            format!(
                "</chat/conversations/{cid}/messages?order=desc&limit=2&before=2>; rel=\"next\""
            )
        );
        c.get(&format!("/chat/conversations/{BOGUS}/messages"))
            .await
            .assert_error(404, "not_found", None);

        // Delete: the seq is not reused.
        assert_eq!(c.delete(&format!("/chat/messages/{mid}")).await.status, 204);
        c.get(&format!("/chat/messages/{mid}"))
            .await
            .assert_error(404, "not_found", None);
        let r = c.post("/chat/messages", base.clone()).await;
        assert_eq!(r.json()["seq"], 4);
        let conv_now = c.get(&format!("/chat/conversations/{cid}")).await.json();
        assert_eq!(conv_now["message_count"], 3);

        // Deleting the conversation takes its messages.
        let m4 = uuid_of(&r.json());
        assert_eq!(
            c.delete(&format!("/chat/conversations/{cid}")).await.status,
            204
        );
        c.get(&format!("/chat/messages/{m4}"))
            .await
            .assert_error(404, "not_found", None);
    }

    pub async fn message_paging_by_link(s: &Server) {
        let ada = s.user("ada").await;
        let c = &ada.client;
        let cid = uuid_of(
            &c.post("/chat/conversations", json!({"title": "long"}))
                .await
                .json(),
        );
        for i in 0..250 {
            let r = c
                .post(
                    "/chat/messages",
                    json!({"conversation_id": cid, "role": "user", "content": format!("m{i}")}),
                )
                .await;
            assert_eq!(r.status, 201);
        }
        for (first, order) in [("?limit=100", "asc"), ("?order=desc&limit=100", "desc")] {
            let mut next = Some(format!("/chat/conversations/{cid}/messages{first}"));
            let mut seqs = Vec::new();
            let mut pages = 0;
            while let Some(path) = next {
                let r = c.get(&path).await;
                assert_eq!(r.status, 200, "{path}: {}", r.text());
                pages += 1;
                seqs.extend(
                    r.json()
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| m["seq"].as_u64().unwrap()),
                );
                next = link_next(r.header("link"));
            }
            let mut expected: Vec<u64> = (1..=250).collect();
            if order == "desc" {
                expected.reverse();
            }
            assert_eq!(seqs, expected, "{order}");
            assert_eq!(pages, 3, "{order}");
        }
    }

    pub async fn concurrent_appends(s: &Server) {
        let ada = s.user("ada").await;
        let cid = uuid_of(
            &ada.client
                .post("/chat/conversations", json!({"title": "busy"}))
                .await
                .json(),
        );
        let mut tasks = Vec::new();
        for i in 0..20 {
            let c = ada.client.clone();
            let cid = cid.clone();
            tasks.push(tokio::spawn(async move {
                let r = c
                    .post(
                        "/chat/messages",
                        json!({"conversation_id": cid, "role": "user", "content": format!("from {i}")}),
                    )
                    .await;
                assert_eq!(r.status, 201, "{}", r.text());
                r.json()["seq"].as_u64().unwrap()
            }));
        }
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
        let conv = ada
            .client
            .get(&format!("/chat/conversations/{cid}"))
            .await
            .json();
        assert_eq!(conv["message_count"], 20);
    }

    pub async fn attachments(s: &Server) {
        let ada = s.user("ada").await;
        let c = &ada.client;
        let cid = uuid_of(
            &c.post("/chat/conversations", json!({"title": "t"}))
                .await
                .json(),
        );
        let mid = uuid_of(
            &c.post(
                "/chat/messages",
                json!({"conversation_id": cid, "role": "user", "content": "see"}),
            )
            .await
            .json(),
        );
        let r = c
            .post(
                "/chat/attachments",
                json!({"message_id": mid, "file_type": "image/png", "file_path": "s3://bucket/a.png"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let a = r.json();
        let aid = uuid_of(&a);
        assert_eq!(
            r.header("location").unwrap(),
            format!("/chat/attachments/{aid}")
        );
        assert_eq!(a["message_id"], mid.as_str());
        assert_eq!(a.as_object().unwrap().len(), 5);
        assert!(a.get("user_id").is_none() && a.get("conversation_id").is_none());
        assert_eq!(c.get(&format!("/chat/attachments/{aid}")).await.json(), a);

        let mut ids = vec![aid.clone()];
        for i in 0..4 {
            let r = c
                .post(
                    "/chat/attachments",
                    json!({"message_id": mid, "file_type": "text", "file_path": format!("f{i}.txt")}),
                )
                .await;
            ids.push(uuid_of(&r.json()));
        }
        let mut seen = Vec::new();
        let mut next = Some(format!("/chat/messages/{mid}/attachments?limit=2"));
        while let Some(path) = next {
            let r = c.get(&path).await;
            assert_eq!(r.status, 200);
            seen.extend(r.json().as_array().unwrap().iter().map(uuid_of));
            next = link_next(r.header("link"));
        }
        assert_eq!(seen, ids);

        for (body, field) in [
            (
                json!({"message_id": mid, "file_type": "a b", "file_path": "p"}),
                "file_type",
            ),
            (
                json!({"message_id": mid, "file_type": "", "file_path": "p"}),
                "file_type",
            ),
            (
                json!({"message_id": mid, "file_type": "text", "file_path": ""}),
                "file_path",
            ),
            (
                json!({"message_id": mid, "file_type": "text", "file_path": "a\u{7}"}),
                "file_path",
            ),
            (json!({"file_type": "text", "file_path": "p"}), "message_id"),
        ] {
            c.post("/chat/attachments", body)
                .await
                .assert_error(400, "invalid_input", Some(field));
        }
        c.post(
            "/chat/attachments",
            json!({"message_id": BOGUS, "file_type": "text", "file_path": "p"}),
        )
        .await
        .assert_error(404, "not_found", None);
        c.get(&format!("/chat/messages/{BOGUS}/attachments"))
            .await
            .assert_error(404, "not_found", None);

        assert_eq!(
            c.delete(&format!("/chat/attachments/{aid}")).await.status,
            204
        );
        c.get(&format!("/chat/attachments/{aid}"))
            .await
            .assert_error(404, "not_found", None);
        // A message's deletion takes its attachments.
        assert_eq!(c.delete(&format!("/chat/messages/{mid}")).await.status, 204);
        c.get(&format!("/chat/attachments/{}", ids[1]))
            .await
            .assert_error(404, "not_found", None);
    }

    pub async fn providers(s: &Server) {
        let shared = s
            .app
            .service()
            .create_shared_provider(
                chat_core::NewProvider::parse("OpenAI", "https://api.openai.com/v1").unwrap(),
            )
            .await
            .unwrap();
        let ada = s.user("ada").await;
        let bob = s.user("bob").await;
        let c = &ada.client;
        let r = c
            .post(
                "/chat/llm-providers",
                json!({"name": "Local", "api_endpoint": "http://localhost:11434"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let p = r.json();
        let pid = uuid_of(&p);
        assert_eq!(
            r.header("location").unwrap(),
            format!("/chat/llm-providers/{pid}")
        );
        assert_eq!(p["owner_id"], ada.id.as_str());
        assert_eq!(p.as_object().unwrap().len(), 5);
        c.post(
            "/chat/llm-providers",
            json!({"name": "LOCAL", "api_endpoint": "http://x.example"}),
        )
        .await
        .assert_error(409, "conflict", Some("name"));
        // A shared provider's name does not clash with a private one.
        assert_eq!(
            c.post(
                "/chat/llm-providers",
                json!({"name": "openai", "api_endpoint": "https://x.example"})
            )
            .await
            .status,
            201
        );
        // Another user's names do not clash.
        assert_eq!(
            bob.client
                .post(
                    "/chat/llm-providers",
                    json!({"name": "Local", "api_endpoint": "http://localhost:1"})
                )
                .await
                .status,
            201
        );
        for (body, field) in [
            (
                json!({"name": "", "api_endpoint": "https://x.example"}),
                "name",
            ),
            (
                json!({"name": "n", "api_endpoint": "ftp://x.example"}),
                "api_endpoint",
            ),
            (
                json!({"name": "n", "api_endpoint": "not a url"}),
                "api_endpoint",
            ),
            (json!({"name": "n"}), "api_endpoint"),
        ] {
            c.post("/chat/llm-providers", body).await.assert_error(
                400,
                "invalid_input",
                Some(field),
            );
        }

        let shared_json = c.get(&format!("/chat/llm-providers/{}", shared.id)).await;
        assert_eq!(shared_json.status, 200);
        assert_eq!(shared_json.json()["owner_id"], Value::Null);
        let list = c.get("/chat/llm-providers").await.json();
        let names: Vec<_> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["OpenAI", "Local", "openai"]);

        c.delete(&format!("/chat/llm-providers/{}", shared.id))
            .await
            .assert_error(403, "forbidden", None);
        assert_eq!(
            c.delete(&format!("/chat/llm-providers/{pid}")).await.status,
            204
        );
        c.get(&format!("/chat/llm-providers/{pid}"))
            .await
            .assert_error(404, "not_found", None);
    }

    pub async fn configs(s: &Server) {
        let shared = s
            .app
            .service()
            .create_shared_provider(
                chat_core::NewProvider::parse("Shared", "https://api.example").unwrap(),
            )
            .await
            .unwrap();
        let ada = s.user("ada").await;
        let c = &ada.client;
        let secret = "sk-live-0123456789abcdef";
        let r = c
            .post(
                "/chat/user-llm-configs",
                json!({"provider_id": shared.id.to_string(), "api_key": secret}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert!(!r.text().contains(secret));
        let cfg = r.json();
        let path = format!("/chat/user-llm-configs/{}/{}", ada.id, shared.id);
        assert_eq!(r.header("location").unwrap(), path);
        assert_eq!(cfg["api_key_hint"], "…cdef");
        assert_eq!(cfg["user_id"], ada.id.as_str());
        assert_eq!(cfg.as_object().unwrap().len(), 6);
        assert!(cfg.get("api_key").is_none() && cfg.get("sealed_key").is_none());

        let dup = c
            .post(
                "/chat/user-llm-configs",
                json!({"provider_id": shared.id.to_string(), "api_key": "other"}),
            )
            .await;
        assert_eq!(dup.status, 409, "{}", dup.text());
        assert_eq!(dup.json()["error"]["code"], "conflict");
        c.post(
            "/chat/user-llm-configs",
            json!({"provider_id": BOGUS, "api_key": "k"}),
        )
        .await
        .assert_error(404, "not_found", None);
        c.post(
            "/chat/user-llm-configs",
            json!({"user_id": BOGUS, "provider_id": shared.id.to_string(), "api_key": "k"}),
        )
        .await
        .assert_error(403, "forbidden", Some("user_id"));
        c.post(
            "/chat/user-llm-configs",
            json!({"provider_id": shared.id.to_string(), "api_key": "has space"}),
        )
        .await
        .assert_error(400, "invalid_input", Some("api_key"));

        let got = c.get(&path).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.json(), cfg);

        let r = c.put(&path, json!({"api_key": "short"})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["api_key_hint"], Value::Null);
        assert!(!r.text().contains("short"));
        c.put(&path, json!({}))
            .await
            .assert_error(400, "invalid_input", Some("api_key"));
        let caller = Caller::trusted(ada.id.parse().unwrap());
        let key = s
            .app
            .service()
            .reveal_api_key(&caller, shared.id)
            .await
            .unwrap();
        assert_eq!(key.expose_secret(), "short");

        let other = format!("/chat/user-llm-configs/{}/{}", ada.id, ProviderId::new());
        c.put(&other, json!({"api_key": "k"}))
            .await
            .assert_error(404, "not_found", None);
        c.get(&other).await.assert_error(404, "not_found", None);
        c.get(&format!("/chat/user-llm-configs/nope/{}", shared.id))
            .await
            .assert_error(400, "invalid_input", Some("user_id"));
        c.get(&format!("/chat/user-llm-configs/{}/nope", ada.id))
            .await
            .assert_error(400, "invalid_input", Some("provider_id"));

        assert_eq!(c.delete(&path).await.status, 204);
        c.get(&path).await.assert_error(404, "not_found", None);
        c.delete(&path).await.assert_error(404, "not_found", None);

        // Deleting a private provider takes its configs.
        let pid = uuid_of(
            &c.post(
                "/chat/llm-providers",
                json!({"name": "Mine", "api_endpoint": "https://mine.example"}),
            )
            .await
            .json(),
        );
        assert_eq!(
            c.post(
                "/chat/user-llm-configs",
                json!({"provider_id": pid, "api_key": "k-123"})
            )
            .await
            .status,
            201
        );
        assert_eq!(
            c.delete(&format!("/chat/llm-providers/{pid}")).await.status,
            204
        );
        c.get(&format!("/chat/user-llm-configs/{}/{pid}", ada.id))
            .await
            .assert_error(404, "not_found", None);
    }

    /// Another user's ids answer 404 on every endpoint, exactly like missing ones.
    pub async fn foreign_ids(s: &Server) {
        let shared = s
            .app
            .service()
            .create_shared_provider(
                chat_core::NewProvider::parse("Shared", "https://api.example").unwrap(),
            )
            .await
            .unwrap();
        let ada = s.user("ada").await;
        let eve = s.user("eve").await;
        let a = &ada.client;
        let cid = uuid_of(
            &a.post("/chat/conversations", json!({"title": "private"}))
                .await
                .json(),
        );
        let mid = uuid_of(
            &a.post(
                "/chat/messages",
                json!({"conversation_id": cid, "role": "user", "content": "secret"}),
            )
            .await
            .json(),
        );
        let aid = uuid_of(
            &a.post(
                "/chat/attachments",
                json!({"message_id": mid, "file_type": "text", "file_path": "p"}),
            )
            .await
            .json(),
        );
        let pid = uuid_of(
            &a.post(
                "/chat/llm-providers",
                json!({"name": "Mine", "api_endpoint": "https://mine.example"}),
            )
            .await
            .json(),
        );
        assert_eq!(
            a.post(
                "/chat/user-llm-configs",
                json!({"provider_id": shared.id.to_string(), "api_key": "k-ada"})
            )
            .await
            .status,
            201
        );
        let cfg = format!("/chat/user-llm-configs/{}/{}", ada.id, shared.id);

        let e = &eve.client;
        let not_found = [
            e.get(&format!("/chat/conversations/{cid}")).await,
            e.patch(
                &format!("/chat/conversations/{cid}"),
                json!({"title": "mine now"}),
            )
            .await,
            e.get(&format!("/chat/conversations/{cid}/messages")).await,
            e.post(
                "/chat/messages",
                json!({"conversation_id": cid, "role": "user", "content": "x"}),
            )
            .await,
            e.get(&format!("/chat/messages/{mid}")).await,
            e.get(&format!("/chat/messages/{mid}/attachments")).await,
            e.post(
                "/chat/attachments",
                json!({"message_id": mid, "file_type": "text", "file_path": "p"}),
            )
            .await,
            e.get(&format!("/chat/attachments/{aid}")).await,
            e.get(&format!("/chat/llm-providers/{pid}")).await,
            e.post(
                "/chat/user-llm-configs",
                json!({"provider_id": pid, "api_key": "k"}),
            )
            .await,
            e.get(&cfg).await,
            e.put(&cfg, json!({"api_key": "stolen"})).await,
            e.delete(&cfg).await,
            e.delete(&format!("/chat/attachments/{aid}")).await,
            e.delete(&format!("/chat/messages/{mid}")).await,
            e.delete(&format!("/chat/llm-providers/{pid}")).await,
            e.delete(&format!("/chat/conversations/{cid}")).await,
        ];
        for r in not_found {
            r.assert_error(404, "not_found", None);
        }
        // And the foreign user_id in a body is 403.
        e.post(
            "/chat/conversations",
            json!({"title": "t", "user_id": ada.id}),
        )
        .await
        .assert_error(403, "forbidden", Some("user_id"));
        e.post(
            "/chat/user-llm-configs",
            json!({"user_id": ada.id, "provider_id": shared.id.to_string(), "api_key": "k"}),
        )
        .await
        .assert_error(403, "forbidden", Some("user_id"));
        // Eve's lists do not show Ada's things.
        assert_eq!(e.get("/chat/conversations").await.json(), json!([]));
        let providers = e.get("/chat/llm-providers").await.json();
        assert_eq!(providers.as_array().unwrap().len(), 1);
        // Ada still has everything.
        assert_eq!(a.get(&format!("/chat/attachments/{aid}")).await.status, 200);
        assert_eq!(a.get(&cfg).await.status, 200);
        assert_eq!(
            a.get(&format!("/chat/conversations/{cid}")).await.json()["title"],
            "private"
        );
    }

    pub async fn protocol(s: &Server) {
        let ada = s.user("ada").await;
        let c = &ada.client;
        // 404 and 405 with Allow, before authentication.
        let anon = s.client();
        anon.get("/nowhere")
            .await
            .assert_error(404, "not_found", None);
        anon.get("/users/")
            .await
            .assert_error(404, "not_found", None);
        for (method, path, allow) in [
            ("PUT", "/users", "POST"),
            ("GET", "/users", "POST"),
            ("HEAD", "/chat/conversations", "GET, POST"),
            ("OPTIONS", "/chat/conversations", "GET, POST"),
            ("DELETE", "/chat/messages", "POST"),
            ("POST", "/chat/conversations/x", "GET, PATCH, DELETE"),
            ("PATCH", "/healthz", "GET"),
        ] {
            let r = anon.send(method, path, &[], None).await;
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
            if method != "HEAD" {
                r.assert_error(405, "method_not_allowed", None);
            }
        }

        // X-Request-Id: echoed when acceptable, replaced otherwise, on every response.
        let r = c
            .send(
                "GET",
                "/users/me",
                &[("x-request-id", "abc.DEF_123-x")],
                None,
            )
            .await;
        assert_eq!(r.header("x-request-id"), Some("abc.DEF_123-x"));
        let r = anon
            .send("GET", "/nowhere", &[("x-request-id", "mine-1")], None)
            .await;
        assert_eq!(r.header("x-request-id"), Some("mine-1"));
        assert_eq!(r.json()["error"]["request_id"], "mine-1");
        let long = "a".repeat(129);
        for bad in ["has space", "semi;colon", long.as_str(), ""] {
            let r = c
                .send("GET", "/users/me", &[("x-request-id", bad)], None)
                .await;
            let id = r.header("x-request-id").unwrap();
            assert_ne!(id, bad);
            assert!(!id.is_empty() && id.len() <= 128);
        }
        let a = c.get("/users/me").await;
        let b = c.get("/users/me").await;
        assert_ne!(a.header("x-request-id"), b.header("x-request-id"));

        // Content types.
        let body = br#"{"title":"t"}"#;
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "multipart/form-data",
        ] {
            c.raw("POST", "/chat/conversations", ct, body)
                .await
                .assert_error(415, "unsupported_media_type", None);
        }
        for ct in ["application/json; charset=utf-8", "Application/JSON"] {
            assert_eq!(
                c.raw("POST", "/chat/conversations", ct, body).await.status,
                201,
                "{ct}"
            );
        }
        let r = c
            .send("POST", "/chat/conversations", &[], Some(body.to_vec()))
            .await;
        assert_eq!(r.status, 201, "a missing content type reads as JSON");
        // A bodyless request's content type is not checked.
        let r = c
            .send(
                "GET",
                "/chat/conversations",
                &[("content-type", "text/plain")],
                None,
            )
            .await;
        assert_eq!(r.status, 200);

        // Body syntax.
        for bad in [
            &b""[..],
            b"   ",
            b"{",
            b"[1,2]",
            b"\"title\"",
            b"null",
            b"42",
            b"{\"title\": \"t\",}",
            b"\xff\xfe",
        ] {
            c.raw("POST", "/chat/conversations", "application/json", bad)
                .await
                .assert_error(400, "invalid_input", None);
        }
        let deep = "[".repeat(10_000);
        c.raw(
            "POST",
            "/chat/conversations",
            "application/json",
            deep.as_bytes(),
        )
        .await
        .assert_error(400, "invalid_input", None);
        c.raw("POST", "/users/login", "application/json", b"")
            .await
            .assert_error(400, "invalid_input", None);

        // Check order: 401 before 415 and 400; 415 before 400.
        anon.raw("POST", "/chat/conversations", "text/plain", b"{")
            .await
            .assert_error(401, "unauthorized", None);
        c.raw("POST", "/chat/conversations", "text/plain", b"{")
            .await
            .assert_error(415, "unsupported_media_type", None);
        // 401 before a bad path id.
        anon.get("/chat/conversations/not-a-uuid")
            .await
            .assert_error(401, "unauthorized", None);
    }

    pub async fn body_limits(s: &Server) {
        let ada = s.user("ada").await;
        let c = &ada.client;
        let cap = s.app.config().max_body_bytes;
        // Over the cap by Content-Length: refused at once, without the body being sent.
        let request = format!(
            "POST /chat/conversations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
            ada.token,
            cap + 1
        );
        let answer = raw_exchange(s.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(answer.contains("payload_too_large"), "{answer}");
        // Under the cap with a body exactly at the cap: read and judged on its content.
        let mut big = br#"{"title":"t","pad":""#.to_vec();
        big.resize(cap - 2, b'a');
        big.extend_from_slice(b"\"}");
        assert_eq!(big.len(), cap);
        assert_eq!(
            c.raw("POST", "/chat/conversations", "application/json", &big)
                .await
                .status,
            201
        );
        // One byte over, body and all: refused on its Content-Length. The server answers and
        // closes without reading the body, so the client's write may fail half-way; the
        // answer is read all the same (hyper's client gives up on the failed write instead).
        big.insert(10, b' ');
        let mut request = format!(
            "POST /chat/conversations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            ada.token,
            big.len()
        )
        .into_bytes();
        request.extend_from_slice(&big);
        let answer = raw_exchange(s.addr, &request).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("payload_too_large"), "{answer}");

        // Chunked over the cap: counted as it comes.
        let mut request = format!(
            "POST /chat/conversations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ntransfer-encoding: chunked\r\n\r\n",
            ada.token
        )
        .into_bytes();
        let chunk = vec![b' '; 64 * 1024];
        let mut sent = 0;
        while sent <= cap {
            request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            request.extend_from_slice(&chunk);
            request.extend_from_slice(b"\r\n");
            sent += chunk.len();
        }
        let answer = raw_exchange(s.addr, &request).await;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "{}",
            &answer[..answer.len().min(300)]
        );
        assert!(answer.to_ascii_lowercase().contains("connection: close"));

        // 413 comes before 415.
        let request = format!(
            "POST /chat/messages HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
            ada.token,
            cap * 4
        );
        let answer = raw_exchange(s.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        // Small chunked bodies are fine.
        let request = format!(
            "POST /chat/conversations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\n{{\"tit\r\n9\r\nle\":\"ok\"}}\r\n0\r\n\r\n",
            ada.token
        );
        let answer = raw_exchange(s.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        // The server still answers.
        assert_eq!(c.get("/users/me").await.status, 200);
    }

    pub async fn query_validation(s: &Server) {
        let ada = s.user("ada").await;
        let c = &ada.client;
        let cid = uuid_of(
            &c.post("/chat/conversations", json!({"title": "t"}))
                .await
                .json(),
        );
        let mid = uuid_of(
            &c.post(
                "/chat/messages",
                json!({"conversation_id": cid, "role": "user", "content": "x"}),
            )
            .await
            .json(),
        );
        let msgs = format!("/chat/conversations/{cid}/messages");
        let atts = format!("/chat/messages/{mid}/attachments");
        for base in [
            "/chat/conversations",
            msgs.as_str(),
            atts.as_str(),
            "/chat/llm-providers",
        ] {
            for q in [
                "limit=",
                "limit=0",
                "limit=1001",
                "limit=abc",
                "limit=-1",
                "limit=1.5",
                "limit=1&limit=2",
                "limit=99999999999999999999999",
            ] {
                c.get(&format!("{base}?{q}")).await.assert_error(
                    400,
                    "invalid_input",
                    Some("limit"),
                );
            }
            for q in ["limit=1", "limit=1000", "unknown=1"] {
                assert_eq!(
                    c.get(&format!("{base}?{q}")).await.status,
                    200,
                    "{base}?{q}"
                );
            }
        }
        for (q, field) in [
            ("before=1", "before"),
            ("order=asc&before=1", "before"),
            ("order=desc&after=1", "after"),
            ("order=sideways", "order"),
            ("after=x", "after"),
            ("after=-1", "after"),
            ("order=desc&before=", "before"),
            ("after=1&after=2", "after"),
        ] {
            c.get(&format!("{msgs}?{q}"))
                .await
                .assert_error(400, "invalid_input", Some(field));
        }
        for q in [
            "after=0",
            "order=asc&after=1",
            "order=desc&before=1",
            "order=desc",
        ] {
            assert_eq!(c.get(&format!("{msgs}?{q}")).await.status, 200, "{q}");
        }
        let bogus_after = format!("after={BOGUS}");
        let bogus_before = format!("before={BOGUS}");
        for (base, q, field) in [
            ("/chat/conversations", "before=nope", "before"),
            ("/chat/conversations", bogus_after.as_str(), "after"),
            ("/chat/llm-providers", "after=nope", "after"),
            ("/chat/llm-providers", bogus_before.as_str(), "before"),
            (atts.as_str(), "after=nope", "after"),
        ] {
            c.get(&format!("{base}?{q}"))
                .await
                .assert_error(400, "invalid_input", Some(field));
        }
    }

    pub async fn operations(s: &Server) {
        let c = s.client();
        let r = c.get("/healthz").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["status"], "ok");
        let r = c.get("/readyz").await;
        assert_eq!(r.status, 200);
        let r = c.get("/openapi.json").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["openapi"], "3.1.0");
    }

    /// A small deterministic generator (xorshift), so a failure replays exactly.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
        fn bytes(&mut self, max: usize) -> Vec<u8> {
            let n = self.below(max + 1);
            (0..n).map(|_| self.next() as u8).collect()
        }
        fn json(&mut self, depth: u32) -> Value {
            match self.below(if depth > 3 { 6 } else { 8 }) {
                0 => Value::Null,
                1 => json!(self.below(2) == 0),
                2 => json!(self.next() as i64),
                3 => json!(f64::from(self.next() as u32) / 7.0),
                4 => json!(String::from_utf8_lossy(&self.bytes(40))),
                5 => json!(
                    self.pick(&[
                        "",
                        " ",
                        "user",
                        "01890000-0000-7000-8000-000000000000",
                        "\u{0}",
                        "https://x.example",
                        "a\nb"
                    ])
                    .to_string()
                ),
                6 => Value::Array((0..self.below(4)).map(|_| self.json(depth + 1)).collect()),
                _ => Value::Object(
                    (0..self.below(5))
                        .map(|_| (self.pick(FIELDS).to_string(), self.json(depth + 1)))
                        .collect(),
                ),
            }
        }
    }

    const FIELDS: &[&str] = &[
        "username",
        "password",
        "email",
        "user_id",
        "title",
        "conversation_id",
        "role",
        "content",
        "metadata",
        "message_id",
        "file_type",
        "file_path",
        "name",
        "api_endpoint",
        "provider_id",
        "api_key",
        "",
    ];

    fn percent(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("%{b:02X}")).collect()
    }

    /// Hundreds of malformed requests: none may get a 5xx, and the server keeps answering.
    pub async fn malformed_input(s: &Server) {
        let ada = s.user("ada").await;
        let cid = uuid_of(
            &ada.client
                .post("/chat/conversations", json!({"title": "t"}))
                .await
                .json(),
        );
        let mid = uuid_of(
            &ada.client
                .post(
                    "/chat/messages",
                    json!({"conversation_id": cid, "role": "user", "content": "x"}),
                )
                .await
                .json(),
        );
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        // Logging out would end the session the rest of the run uses.
        let routes: Vec<_> = chat_server::route_table()
            .into_iter()
            .filter(|(_, path)| *path != "/users/logout")
            .collect();
        let methods = [
            "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "BREW",
        ];
        let content_types = [
            "application/json",
            "text/plain",
            "application/json; charset=latin1",
            "*/*",
            "application/json;;;",
            "x",
        ];
        for i in 0..400 {
            let (method, template) = *rng.pick(&routes);
            let method = if rng.below(4) == 0 {
                *rng.pick(&methods)
            } else {
                method
            };
            let mut path = String::new();
            for segment in template.split('/').skip(1) {
                path.push('/');
                if segment.starts_with('{') {
                    let junk = percent(&rng.bytes(12));
                    let choices = [
                        cid.as_str(),
                        mid.as_str(),
                        ada.id.as_str(),
                        BOGUS,
                        "x",
                        junk.as_str(),
                        "..",
                        "%00",
                    ];
                    let choice: &str = choices[rng.below(choices.len())];
                    path.push_str(choice);
                } else {
                    path.push_str(segment);
                }
            }
            match rng.below(6) {
                0 => path.push_str(&format!("?limit={}", percent(&rng.bytes(6)))),
                1 => path.push_str(&format!(
                    "?after={}&before={}&order={}",
                    rng.next(),
                    percent(&rng.bytes(4)),
                    rng.below(3)
                )),
                2 => path.push_str(&format!("/{}", percent(&rng.bytes(8)))),
                _ => {}
            }
            let body = match rng.below(4) {
                0 => rng.bytes(200),
                1 => serde_json::to_vec(&rng.json(0)).unwrap(),
                2 => {
                    let mut fields = serde_json::Map::new();
                    for f in FIELDS {
                        if rng.below(2) == 0 {
                            fields.insert((*f).to_owned(), rng.json(1));
                        }
                    }
                    serde_json::to_vec(&Value::Object(fields)).unwrap()
                }
                _ => Vec::new(),
            };
            let client = if rng.below(5) == 0 {
                s.client().with_token("garbage")
            } else {
                ada.client.clone()
            };
            let ct = *rng.pick(&content_types);
            let rid = percent(&rng.bytes(3));
            let headers = [("content-type", ct), ("x-request-id", rid.as_str())];
            let r = client.send(method, &path, &headers, Some(body)).await;
            assert!(
                r.status < 500,
                "request {i}: {method} {path} got {}: {}",
                r.status,
                r.text()
            );
        }
        // Byte-level garbage that no well-behaved client sends.
        for raw in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET /healthz HTTP/9.9\r\n\r\n",
            b"GET /\x01\x02 HTTP/1.1\r\nhost: x\r\n\r\n",
            b"POST /users HTTP/1.1\r\nhost: x\r\ncontent-length: -5\r\n\r\n",
            b"POST /users HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello",
            b"POST /users HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"GET /users/me HTTP/1.1\r\nhost: x\r\nauthorization: Bearer \xff\xfe\r\n\r\n",
            b"GET /users/me HTTP/1.1\r\nhost: x\r\nx-request-id: \xff\r\n\r\n",
        ] {
            let answer = raw_exchange(s.addr, raw).await;
            assert!(!answer.starts_with("HTTP/1.1 5"), "{answer}");
        }
        assert_eq!(s.client().get("/healthz").await.status, 200);
        assert_eq!(ada.client.get("/users/me").await.status, 200);
    }

    // ----- hostile clients: id spellings, impossible login names -----

    /// `id` in upper case, checked to be another spelling.
    fn shout(id: &str) -> String {
        let upper = id.to_uppercase();
        assert_ne!(upper, id, "{id} has no letter to spell otherwise");
        upper
    }

    /// Only the lower-case hyphenated form of an id is accepted, in a path, a body or a
    /// cursor, and the headers that name paths (`Location`, `Link`) carry that form.
    pub async fn ids_only_in_lower_case(s: &Server) {
        let ada = s.user("ada").await;
        let c = &ada.client;
        let r = c.post("/chat/conversations", json!({"title": "t"})).await;
        let cid = uuid_of(&r.json());
        let canonical = |id: &str| {
            id.len() == 36
                && id
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f' | b'-'))
        };
        assert!(canonical(&cid), "{cid}");
        assert_eq!(
            r.header("location"),
            Some(format!("/chat/conversations/{cid}").as_str())
        );
        for _ in 0..2 {
            c.post(
                "/chat/messages",
                json!({"conversation_id": cid, "role": "user", "content": "hi"}),
            )
            .await;
        }
        let r = c
            .post(
                "/chat/messages",
                json!({"conversation_id": cid, "role": "user", "content": "see"}),
            )
            .await;
        let mid = uuid_of(&r.json());
        assert_eq!(
            r.header("location"),
            Some(format!("/chat/messages/{mid}").as_str())
        );
        let provider = c
            .post(
                "/chat/llm-providers",
                json!({"name": "Local", "api_endpoint": "http://localhost:11434"}),
            )
            .await
            .json();
        let pid = uuid_of(&provider);

        // In a path: 400 naming the parameter, with no Link, whichever letter is upper case.
        let (upper_cid, upper_mid) = (shout(&cid), shout(&mid));
        let one_upper = {
            let at = cid.find(|ch: char| ch.is_ascii_lowercase()).unwrap();
            let mut spelled = cid.clone();
            spelled.replace_range(at..=at, &cid[at..=at].to_uppercase());
            spelled
        };
        for path in [
            format!("/chat/conversations/{upper_cid}"),
            format!("/chat/conversations/{one_upper}"),
            format!("/chat/conversations/{upper_cid}/messages?limit=1"),
            format!("/chat/messages/{upper_mid}"),
            format!("/chat/messages/{upper_mid}/attachments?limit=1"),
            format!("/chat/llm-providers/{}", shout(&pid)),
        ] {
            let r = c.get(&path).await;
            r.assert_error(400, "invalid_input", Some("id"));
            assert!(r.header("link").is_none(), "{path}: {:?}", r.header("link"));
        }
        c.get(&format!("/chat/user-llm-configs/{}/{pid}", shout(&ada.id)))
            .await
            .assert_error(400, "invalid_input", Some("user_id"));
        c.delete(&format!("/chat/conversations/{upper_cid}"))
            .await
            .assert_error(400, "invalid_input", Some("id"));

        // In a body and in a cursor: 400 naming the field.
        c.post(
            "/chat/messages",
            json!({"conversation_id": upper_cid, "role": "user", "content": "x"}),
        )
        .await
        .assert_error(400, "invalid_input", Some("conversation_id"));
        c.post(
            "/chat/conversations",
            json!({"title": "t", "user_id": shout(&ada.id)}),
        )
        .await
        .assert_error(400, "invalid_input", Some("user_id"));
        c.post(
            "/chat/user-llm-configs",
            json!({"provider_id": shout(&pid), "api_key": "sk-0123456789abcdef"}),
        )
        .await
        .assert_error(400, "invalid_input", Some("provider_id"));
        c.get(&format!("/chat/conversations?before={upper_cid}"))
            .await
            .assert_error(400, "invalid_input", Some("before"));

        // The canonical spelling works, and the links it gets are canonical.
        let r = c
            .get(&format!("/chat/conversations/{cid}/messages?limit=1"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.header("link"),
            Some(
                format!("</chat/conversations/{cid}/messages?limit=1&after=1>; rel=\"next\"")
                    .as_str()
            )
        );
        let r = c.get("/chat/conversations?limit=1").await;
        assert_eq!(
            r.header("link"),
            Some(format!("</chat/conversations?limit=1&before={cid}>; rel=\"next\"").as_str())
        );
        // Nothing was changed or deleted by the refused requests.
        let conv = c.get(&format!("/chat/conversations/{cid}")).await;
        assert_eq!(conv.status, 200);
        assert_eq!(conv.json()["message_count"], 3);
    }

    /// A login whose name could not have been registered is 401 like any wrong credential,
    /// on every store (PostgreSQL cannot even take U+0000 in a query), and costs the right
    /// user nothing.
    pub async fn logins_with_impossible_names(s: &Server) {
        s.user("ada").await;
        let c = s.client();
        let too_long = "a".repeat(65);
        for name in [
            "\u{0}",
            "ada\u{0}",
            "\u{0}ada",
            "a\u{0}a",
            "",
            "ad",
            too_long.as_str(),
            "ada lovelace",
            "ädä",
            "ada\u{7f}",
        ] {
            let r = c
                .post(
                    "/users/login",
                    json!({"username": name, "password": "password-of-ada"}),
                )
                .await;
            r.assert_error(401, "unauthorized", None);
            assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{name:?}");
        }
        let r = c
            .post(
                "/users/login",
                json!({"username": "ADA", "password": "password-of-ada"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}
