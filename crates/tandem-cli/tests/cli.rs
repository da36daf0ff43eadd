//! The real `tandem` binary against real SQLite files in temporary data directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn tandem(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tandem"));
    c.arg("--data-dir").arg(dir);
    // Keep the developer's environment from leaking into the tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("TANDEM_") {
            c.env_remove(k);
        }
    }
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    tandem(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn run_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = tandem(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "command failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn fails(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected failure, got success");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(
        err.contains(needle),
        "stderr {err:?} should mention {needle:?}"
    );
}

fn add_user(dir: &Path, role: &str, name: &str) -> String {
    ok(&run_stdin(
        dir,
        &[
            "user",
            "add",
            "--role",
            role,
            "--name",
            name,
            "--password-stdin",
        ],
        "a long enough password\n",
    ))
    .trim()
    .to_string()
}

#[test]
fn init_writes_config_and_a_private_key_and_refuses_to_overwrite_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    ok(&run(&dir, &["init"]));
    let key = dir.join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let config = std::fs::read_to_string(dir.join("tandem.toml")).unwrap();
    assert!(config.contains("# bind = \"127.0.0.1:8080\""));
    let before = std::fs::read(&key).unwrap();
    fails(&run(&dir, &["init"]), "refusing to overwrite");
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn accounts_teams_export_erase_and_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(&run(dir, &["init"]));
    let pat = add_user(dir, "patient", "pat");
    add_user(dir, "clinician", "clin");
    fails(
        &run_stdin(
            dir,
            &[
                "user",
                "add",
                "--role",
                "patient",
                "--name",
                "pat",
                "--password-stdin",
            ],
            "another long password\n",
        ),
        "already exists",
    );
    fails(
        &run_stdin(
            dir,
            &[
                "user",
                "add",
                "--role",
                "doctor",
                "--name",
                "x",
                "--password-stdin",
            ],
            "pw\n",
        ),
        "unknown role",
    );
    fails(
        &run_stdin(
            dir,
            &[
                "user",
                "add",
                "--role",
                "patient",
                "--name",
                "shorty",
                "--password-stdin",
            ],
            "short\n",
        ),
        "at least 10",
    );
    fails(
        &run(dir, &["user", "add", "--role", "patient", "--name", "nopw"]),
        "--password-stdin",
    );
    let list = ok(&run(dir, &["user", "list"]));
    assert!(list.contains("pat") && list.contains("clinician"));

    ok(&run(
        dir,
        &["team", "assign", "--clinician", "clin", "--patient", &pat],
    ));
    fails(
        &run(
            dir,
            &["team", "assign", "--clinician", "pat", "--patient", "clin"],
        ),
        "not a patient",
    );
    fails(
        &run(
            dir,
            &[
                "team",
                "assign",
                "--clinician",
                "nobody",
                "--patient",
                "pat",
            ],
        ),
        "no user",
    );
    assert!(ok(&run(dir, &["team", "on-call-list"])).contains("Nobody is on call"));
    ok(&run(dir, &["team", "on-call", "--clinician", "clin"]));
    assert_eq!(ok(&run(dir, &["team", "on-call-list"])).trim(), "clin");
    fails(
        &run(dir, &["team", "on-call", "--clinician", "pat"]),
        "only clinicians",
    );
    ok(&run(
        dir,
        &["team", "on-call", "--clinician", "clin", "--off"],
    ));
    assert!(ok(&run(dir, &["team", "on-call-list"])).contains("Nobody is on call"));

    let export: serde_json::Value =
        serde_json::from_str(&ok(&run(dir, &["patient", "export", "pat"]))).unwrap();
    assert_eq!(export["patient"]["username"], "pat");
    assert_eq!(export["care_team"].as_array().unwrap().len(), 1);
    let out = dir.join("export.json");
    ok(&run(
        dir,
        &["patient", "export", &pat, "--out", out.to_str().unwrap()],
    ));
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("tandem-patient-export/v1"));

    fails(&run(dir, &["patient", "erase", "pat"]), "--yes");
    let erased = ok(&run(
        dir,
        &[
            "patient",
            "erase",
            "pat",
            "--yes",
            "--reason",
            "patient request",
        ],
    ));
    assert!(erased.contains("data key destroyed"));
    fails(&run(dir, &["patient", "export", "pat"]), "no user");
    fails(&run(dir, &["patient", "erase", "pat", "--yes"]), "no user");

    let verify = ok(&run(dir, &["audit", "verify"]));
    assert!(verify.contains("intact"), "{verify}");
    assert!(ok(&run(dir, &["db", "migrate"])).contains("Applied 0"));
}

#[test]
fn key_rotation_keeps_data_readable_and_retires_the_old_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(&run(dir, &["init"]));
    add_user(dir, "patient", "pat");
    let old = std::fs::read(dir.join("master.key")).unwrap();
    let out = ok(&run(dir, &["keys", "rotate"]));
    assert!(out.contains("Re-wrapped 1 data key"), "{out}");
    assert_ne!(std::fs::read(dir.join("master.key")).unwrap(), old);
    let retired: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("master.key.retired-"))
        .collect();
    assert_eq!(retired.len(), 1);
    ok(&run(dir, &["patient", "export", "pat"]));

    // Putting the old key back is reported as the wrong key, not as corrupt data.
    std::fs::write(dir.join("master.key"), &old).unwrap();
    fails(
        &run(dir, &["patient", "export", "pat"]),
        "is not the one that wrapped",
    );
}

#[test]
fn bad_input_fails_clearly_without_panicking() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fails(&run(dir, &["user", "list"]), "tandem init");
    ok(&run(dir, &["init"]));
    std::fs::write(dir.join("tandem.toml"), "bnd = \"127.0.0.1:1\"\n").unwrap();
    fails(&run(dir, &["user", "list"]), "bnd");
    std::fs::write(
        dir.join("tandem.toml"),
        "database_url = \"postgres://nobody:secretpw@127.0.0.1:1/none\"\n",
    )
    .unwrap();
    let o = run(dir, &["user", "list"]);
    fails(&o, "could not connect");
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("secretpw"),
        "passwords are redacted"
    );
    std::fs::remove_file(dir.join("tandem.toml")).unwrap();
    std::fs::write(dir.join("master.key"), "not a key\n").unwrap();
    fails(&run(dir, &["user", "list"]), "not a valid Tandem key");
    fails(&run(dir, &["serve", "--bind", "nonsense"]), "HOST:PORT");
    fails(
        &run(
            dir,
            &["--config", "/nonexistent/tandem.toml", "user", "list"],
        ),
        "does not exist",
    );
}

#[test]
fn serve_starts_on_defaults_answers_health_checks_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fresh");
    let mut child = tandem(&dir)
        .args(["serve", "--bind", "127.0.0.1:0"])
        // No model download in this test: a missing model file leaves the server up,
        // answering "can't reply right now" (the web tests cover that path).
        .env(
            "TANDEM_MODEL__EMBEDDED__MODEL_PATH",
            tmp.path().join("no-such-model.gguf"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("Tandem listening on ")
        .expect(&line)
        .to_string();
    assert!(
        dir.join("master.key").exists(),
        "first start generates the key"
    );
    assert!(dir.join("tandem.db").exists());

    let addr = url.trim_start_matches("http://");
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        std::io::Read::read_to_string(&mut s, &mut resp).unwrap();
        resp
    };
    assert!(get("/healthz").starts_with("HTTP/1.1 200"));
    let ready = get("/readyz");
    assert!(
        ready.starts_with("HTTP/1.1 200") && ready.contains("\"ready\""),
        "{ready}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "clean exit on SIGTERM: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped cleanly"));
}

#[test]
fn measure_score_prints_one_json_object_or_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = ok(&run(
        dir,
        &[
            "measure",
            "score",
            "PHQ-9",
            "--answers",
            "3,3,3,3,2,2,2,2,1",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["instrument"], "PHQ-9");
    assert_eq!(v["total"], 21);
    assert_eq!(v["band"], "severe");
    let flags: Vec<&str> = v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        flags.contains(&"item9_positive") && flags.contains(&"step_up"),
        "{flags:?}"
    );
    let gad: serde_json::Value = serde_json::from_str(
        ok(&run(
            dir,
            &["measure", "score", "gad7", "--answers", "1,1,1,1,1,0,0"],
        ))
        .trim(),
    )
    .unwrap();
    assert_eq!(
        (gad["total"].as_u64(), gad["band"].as_str()),
        (Some(5), Some("mild"))
    );

    fails(
        &run(dir, &["measure", "score", "PHQ-9", "--answers", "1,1,1"]),
        "9",
    );
    fails(
        &run(
            dir,
            &[
                "measure",
                "score",
                "PHQ-9",
                "--answers",
                "1,1,1,1,1,1,1,1,7",
            ],
        ),
        "9",
    );
    fails(
        &run(dir, &["measure", "score", "nope", "--answers", "1"]),
        "nope",
    );
    fails(
        &run(
            dir,
            &["measure", "score", "gad7", "--answers", "a,b,c,d,e,f,g"],
        ),
        "number",
    );
}

#[test]
fn a_patient_fills_in_a_measure_on_the_terminal_and_it_is_scheduled_and_charted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(&run(dir, &["init"]));
    add_user(dir, "patient", "pat");
    ok(&run(
        dir,
        &[
            "measure",
            "schedule",
            "--patient",
            "pat",
            "--instrument",
            "phq9",
            "--every-days",
            "14",
        ],
    ));
    let due: serde_json::Value =
        serde_json::from_str(&ok(&run(dir, &["measure", "due", "--patient", "pat"]))).unwrap();
    assert_eq!(due[0]["status"]["status"], "due");

    let filled = ok(&run_stdin(
        dir,
        &["measure", "fill", "PHQ-9", "--patient", "pat"],
        "1\n1\n1\n1\n1\n1\n1\n1\n2\n",
    ));
    assert!(filled.contains("\"total\":10"), "{filled}");
    assert!(
        filled.contains("safety flow"),
        "item 9 alerts the care team: {filled}"
    );
    assert!(filled.contains("C-SSRS"));
    let due: serde_json::Value =
        serde_json::from_str(&ok(&run(dir, &["measure", "due", "--patient", "pat"]))).unwrap();
    assert_eq!(due[0]["status"]["status"], "upcoming");

    fails(
        &run_stdin(
            dir,
            &["measure", "fill", "GAD-7", "--patient", "pat"],
            "1\n9\n",
        ),
        "nothing was stored",
    );
    fails(
        &run_stdin(
            dir,
            &["measure", "fill", "GAD-7", "--patient", "pat"],
            "1\n",
        ),
        "nothing was stored",
    );

    let svg = ok(&run(
        dir,
        &[
            "measure",
            "chart",
            "--patient",
            "pat",
            "--instrument",
            "PHQ-9",
        ],
    ));
    assert!(svg.trim_start().starts_with("<svg") && svg.contains("</svg>"));
    let export = ok(&run(dir, &["patient", "export", "pat"]));
    assert!(export.contains("\"instrument\": \"PHQ-9\""));
    assert_eq!(export.matches("\"source\": \"measure\"").count(), 1);
}
