//! `zonewarden import acme-dns` (issue 14, item 2): an acme-dns SQLite
//! database built here with acme-dns's own schema (joohoi/acme-dns
//! `db.go`) and bcrypt hashes made by Apache's `htpasswd -B` (not our
//! bcrypt), imported by the binary; then the real server, driven with curl
//! and read with kdig, takes the users' original credentials. Also: a
//! second import changes nothing, conflicts and bad rows write nothing, a
//! database that is not acme-dns's is refused.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const ZONE: &str = "_acme.example.org";

// acme-dns's tables, as `db.go` creates them (SQLite).
const ACME_TABLE: &str = "
	CREATE TABLE IF NOT EXISTS acmedns(
		Name TEXT,
		Value TEXT
	);";
const USER_TABLE: &str = "
	CREATE TABLE IF NOT EXISTS records(
        Username TEXT UNIQUE NOT NULL PRIMARY KEY,
        Password TEXT UNIQUE NOT NULL,
        Subdomain TEXT UNIQUE NOT NULL,
		AllowFrom TEXT
    );";
const TXT_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS txt(
		Subdomain TEXT NOT NULL,
		Value   TEXT NOT NULL DEFAULT '',
		LastUpdate INT
	);";

/// An acme-dns account: credentials as its client holds them.
struct Acct {
    user: &'static str,
    key: &'static str,
    sub: &'static str,
    allowfrom: &'static str,
}

const ALICE: Acct = Acct {
    user: "c36f50e8-4632-44f0-83fe-e070fef28a10",
    key: "htvLASZ1TLi7Jb9ZodmbhMBFR0IHIEGYdVkhnaxP",
    sub: "8e5700ea-a4bf-41c7-8a77-e990661dcc6a",
    allowfrom: "[]",
};
const BOB: Acct = Acct {
    user: "a097455b-52cc-4569-90c8-7a4b97c6eba8",
    key: "Pb0ZyPrr2Eu3vUnD0gSmyJ7oTNM3hFp-DmcSQpxY",
    sub: "9d3f4a61-0e0c-4f55-b5a5-3d1c2e6f7a88",
    allowfrom: r#"["127.0.0.2/32"]"#,
};

/// A bcrypt hash of `password` made by htpasswd (Apache's bcrypt, `$2y$`).
fn htpasswd_hash(password: &str) -> String {
    require("htpasswd", "apache2-utils");
    let out = std::process::Command::new("htpasswd")
        .args(["-bnBC", "10", "", password])
        .output()
        .unwrap();
    assert!(out.status.success(), "htpasswd: {out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    let hash = line.trim().trim_start_matches(':').to_string();
    assert!(hash.starts_with("$2y$10$") && hash.len() == 60, "{hash}");
    hash
}

/// acme-dns's database with these accounts, as acme-dns writes it: the
/// password hash as a BLOB (Go's `[]byte`), two `txt` rows per subdomain.
fn acme_dns_db(path: &Path, accounts: &[&Acct]) {
    let db = rusqlite::Connection::open(path).unwrap();
    for t in [ACME_TABLE, USER_TABLE, TXT_TABLE] {
        db.execute_batch(t).unwrap();
    }
    db.execute(
        "INSERT INTO acmedns (Name, Value) values('db_version', '1')",
        [],
    )
    .unwrap();
    for a in accounts {
        let hash = htpasswd_hash(a.key);
        db.execute(
            "INSERT INTO records(Username, Password, Subdomain, AllowFrom) values(?1, ?2, ?3, ?4)",
            rusqlite::params![a.user, hash.as_bytes(), a.sub, a.allowfrom],
        )
        .unwrap();
        db.execute(
            "INSERT INTO txt (Subdomain, Value, LastUpdate) values(?1, ?2, 1700000000)",
            rusqlite::params![a.sub, "x".repeat(43)],
        )
        .unwrap();
        db.execute(
            "INSERT INTO txt (Subdomain, LastUpdate) values(?1, 0)",
            [a.sub],
        )
        .unwrap();
    }
}

/// The zonewarden binary with a config file naming `dir`'s directories.
fn cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    zw_cli(dir, &format!("acme-dns-zone = \"{ZONE}.\"\n"), args)
}

fn import(dir: &Path, db: &Path) -> (bool, String, String) {
    cli(
        dir,
        &["import", "acme-dns", "--database", db.to_str().unwrap()],
    )
}

fn account_path(dir: &Path, a: &Acct) -> PathBuf {
    dir.join(format!("acl/acmedns-{}.toml", a.user))
}

/// Every ACL file's name and bytes.
fn acl_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("acl"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// `POST /update` from `from` (a loopback address): (status, body).
async fn update(h: &Harness, from: &str, a: &Acct, key: &str, txt: &str) -> (u16, String) {
    let url = format!("http://{}/update", h.server().http_addr().unwrap());
    let body = format!(r#"{{"subdomain": "{}", "txt": "{txt}"}}"#, a.sub);
    let (user, key) = (
        format!("X-Api-User: {}", a.user),
        format!("X-Api-Key: {key}"),
    );
    curl_from(
        from,
        &[
            "-X",
            "POST",
            "-H",
            &user,
            "-H",
            &key,
            "--data-binary",
            &body,
            &url,
        ],
    )
    .await
}

/// The TXT strings served at `<sub>.<zone>`, read with kdig.
async fn kdig_txt(h: &Harness, a: &Acct) -> Vec<String> {
    common::kdig_txt(h.addr, &format!("{}.{ZONE}", a.sub)).await
}

#[tokio::test]
async fn imported_accounts_update_with_their_original_credentials() {
    let mut first = None;
    let h = Harness::start_with(|c| {
        c.acme_dns_zone = Some(name(&format!("{ZONE}.")));
        let dir = c.acl_dir.parent().unwrap();
        let db = dir.join("acme-dns.db");
        acme_dns_db(&db, &[&ALICE, &BOB]);
        first = Some(import(dir, &db));
    })
    .await;
    let (ok, out, err) = first.unwrap();
    assert!(ok, "import failed: {out}{err}");
    assert!(out.contains("imported 2, unchanged 0, refused 0"), "{out}");
    assert!(out.contains(&format!("{}.{ZONE}", ALICE.sub)), "{out}");
    assert!(
        out.contains("2 TXT values in the database not carried"),
        "{out}"
    );
    // The hash is htpasswd's, as stored; allowfrom carried.
    let bob_file = std::fs::read_to_string(account_path(h.dir.path(), &BOB)).unwrap();
    assert!(bob_file.contains("password-hash = \"$2y$10$"), "{bob_file}");
    assert!(
        bob_file.contains("networks = [\"127.0.0.2/32\"]"),
        "{bob_file}"
    );

    // The original username and key work, and the value is served.
    let v = "a".repeat(43);
    let resp = update(&h, "127.0.0.1", &ALICE, ALICE.key, &v).await;
    assert_eq!(resp.0, 200, "{resp:?}");
    assert_eq!(kdig_txt(&h, &ALICE).await, vec![v.clone()]);
    // A wrong key: 401.
    let wrong = "W".repeat(40);
    let resp = update(&h, "127.0.0.1", &ALICE, &wrong, &"b".repeat(43)).await;
    assert_eq!(resp.0, 401, "{resp:?}");
    assert_eq!(kdig_txt(&h, &ALICE).await, vec![v]);
    // allowfrom carried: Bob only from 127.0.0.2.
    let w = "c".repeat(43);
    let resp = update(&h, "127.0.0.1", &BOB, BOB.key, &w).await;
    assert_eq!(resp.0, 401, "{resp:?}");
    assert!(kdig_txt(&h, &BOB).await.is_empty());
    let resp = update(&h, "127.0.0.2", &BOB, BOB.key, &w).await;
    assert_eq!(resp.0, 200, "{resp:?}");
    assert_eq!(kdig_txt(&h, &BOB).await, vec![w]);

    // `check` passes on the result; a second import changes nothing.
    let dir = h.dir.path();
    let (ok, out, err) = cli(dir, &["check"]);
    assert!(ok, "check: {out}{err}");
    let before = acl_files(dir);
    let (ok, out, err) = import(dir, &dir.join("acme-dns.db"));
    assert!(ok, "second import: {out}{err}");
    assert!(out.contains("imported 0, unchanged 2, refused 0"), "{out}");
    assert_eq!(acl_files(dir), before);
}

/// The standard layout (two zones, machines www1 with TXT at "shared"...)
/// without a server.
fn layout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    Harness::layout(dir.path());
    dir
}

#[test]
fn a_conflict_or_a_bad_row_refuses_the_whole_import() {
    let dir = layout();
    let dir = dir.path();
    // Alice exists already with another key: a conflict, not overwritten.
    let db = dir.join("other.db");
    acme_dns_db(&db, &[&ALICE]);
    let (ok, out, err) = import(dir, &db);
    assert!(ok, "{out}{err}");
    let alice_before = std::fs::read(account_path(dir, &ALICE)).unwrap();
    let db = dir.join("acme-dns.db");
    const ALICE2: Acct = Acct {
        key: "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
        ..ALICE
    };
    acme_dns_db(&db, &[&ALICE2, &BOB]);
    let before = acl_files(dir);
    let (ok, out, err) = import(dir, &db);
    assert!(!ok, "a conflict must fail: {out}");
    assert!(
        err.contains(&format!("conflict  {}", ALICE.user))
            && err.contains("differs (password hash)")
            && err.contains("nothing imported"),
        "{err}"
    );
    assert_eq!(acl_files(dir), before, "nothing written");
    assert_eq!(
        std::fs::read(account_path(dir, &ALICE)).unwrap(),
        alice_before
    );

    // A subdomain another machine is granted TXT at (www1: "shared").
    const SQUAT: Acct = Acct {
        user: "5b1a7e0c-3f6d-4c2b-9a8e-1d2c3b4a5f60",
        key: "SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS",
        sub: "shared",
        allowfrom: "[]",
    };
    let db = dir.join("squat.db");
    acme_dns_db(&db, &[&SQUAT, &BOB]);
    let (ok, _, err) = import(dir, &db);
    assert!(!ok);
    assert!(
        err.contains(SQUAT.user) && err.contains("already granted to machine www1"),
        "{err}"
    );
    assert_eq!(acl_files(dir), before, "nothing written");

    // A bad row, by username with the reason.
    const BAD: Acct = Acct {
        allowfrom: r#"["10.0.0.1"]"#,
        ..BOB
    };
    // Beside a good row, which is not written either (all or nothing).
    const DAVE: Acct = Acct {
        user: "7d0e3c2b-1a4f-4e6d-8c9b-0a1b2c3d4e5f",
        key: "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD",
        sub: "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6",
        allowfrom: "[]",
    };
    let db = dir.join("bad.db");
    acme_dns_db(&db, &[&DAVE, &BAD]);
    let (ok, _, err) = import(dir, &db);
    assert!(!ok);
    assert!(
        err.contains(&format!("bad row   {}", BOB.user))
            && err.contains("\"10.0.0.1\" is not a CIDR"),
        "{err}"
    );
    assert_eq!(acl_files(dir), before, "nothing written");

    // Two usernames that differ only in case would be one file.
    let upper = DAVE.user.to_ascii_uppercase();
    const DAVE2: Acct = Acct {
        user: "00000000-0000-4000-8000-000000000000",
        key: "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE",
        sub: "e1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6",
        ..DAVE
    };
    let db = dir.join("case.db");
    acme_dns_db(&db, &[&DAVE, &DAVE2]);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE records SET Username = ?1 WHERE Subdomain = ?2",
            rusqlite::params![upper, DAVE2.sub],
        )
        .unwrap();
    let (ok, _, err) = import(dir, &db);
    assert!(!ok);
    assert!(
        err.contains("the username of another row, ignoring case"),
        "{err}"
    );
    assert_eq!(acl_files(dir), before, "nothing written");
}

#[test]
fn a_database_that_is_not_acme_dns_is_refused() {
    let dir = layout();
    let dir = dir.path();
    let before = acl_files(dir);
    // Another program's SQLite database.
    let db = dir.join("other.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE records(id INTEGER PRIMARY KEY, name TEXT);")
        .unwrap();
    let (ok, _, err) = import(dir, &db);
    assert!(!ok);
    assert!(
        err.contains("is not an acme-dns database: table records has no column"),
        "{err}"
    );
    // Not SQLite at all.
    let text = dir.join("notes.txt");
    write(
        &text,
        "not a database, just text that is long enough to have a header...\n",
    );
    let (ok, _, err) = import(dir, &text);
    assert!(!ok);
    assert!(err.contains("is not an acme-dns database"), "{err}");
    // Missing file.
    let (ok, _, err) = import(dir, &dir.join("missing.db"));
    assert!(!ok);
    assert!(
        err.contains("cannot open the database: no such file"),
        "{err}"
    );
    // A zone that is not served.
    let db = dir.join("acme-dns.db");
    acme_dns_db(&db, &[&ALICE]);
    let (ok, _, err) = cli(
        dir,
        &[
            "import",
            "acme-dns",
            "--database",
            db.to_str().unwrap(),
            "--zone",
            "auth.example.net",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("zone auth.example.net. is not served"),
        "{err}"
    );
    assert_eq!(acl_files(dir), before, "nothing written");
    // The databases were only read: the same bytes after an import.
    let bytes = std::fs::read(&db).unwrap();
    let (ok, out, err) = import(dir, &db);
    assert!(ok, "{out}{err}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "the database was changed"
    );
}
