//! Both migration trees hold the same versions, and both apply.

use std::collections::BTreeSet;

fn versions(backend: &str) -> BTreeSet<String> {
    let dir = format!("{}/migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| {
            let entry = entry.expect("directory entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            for file in ["up.sql", "down.sql"] {
                assert!(
                    entry.path().join(file).exists(),
                    "{backend}/{name} lacks {file}"
                );
            }
            name
        })
        .collect()
}

#[test]
fn sqlite_and_postgres_migrations_have_the_same_versions() {
    let sqlite = versions("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, versions("postgres"));
}

#[tokio::test]
async fn migrations_apply_on_the_backend_under_test_and_report_ready() {
    let app = crate::helpers::spawn_app().await;
    assert!(app.db.is_ready().await.expect("database answers"));
    assert!(app.db.migrate().await.expect("idempotent").is_empty());
}
