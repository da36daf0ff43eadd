//! Embedded backend speed on the real default model: time to first token, generation
//! tokens/s and peak memory, compared with llama.cpp's own `llama-bench` on the same GGUF and
//! thread count in the same run when a `llama-bench` binary is found (`LLAMA_BENCH`, `PATH`, or
//! `target/llama-bench/bin/llama-bench`). The llama.cpp sources vendored by llama-cpp-sys-2
//! leave the tools out, so build `llama-bench` from llama.cpp at the same release, with the
//! same flags (`-DGGML_NATIVE=OFF -DGGML_OPENMP=ON`, Release), outside this repository.
//!
//! `cargo bench -p tandem-model --bench embedded` (set `BENCH_RUNS`, default 5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tandem_model::embedded::available_cores;
use tandem_model::{
    CancellationToken, ChatMessage, ChatRequest, EmbeddedBackend, EmbeddedConfig, ModelBackend,
};

const GEN_TOKENS: u32 = 128;

fn vm_hwm_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn find_llama_bench() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LLAMA_BENCH") {
        return Some(p.into());
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("llama-bench");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/llama-bench/bin/llama-bench"
    ));
    p.is_file().then_some(p)
}

/// (prompt tokens/s, generation tokens/s) from llama-bench's JSON output.
fn run_llama_bench(
    bin: &PathBuf,
    model: &PathBuf,
    threads: usize,
    n_prompt: usize,
) -> Option<(f64, f64)> {
    let out = std::process::Command::new(bin)
        .args(["-m"])
        .arg(model)
        .args(["-t", &threads.to_string()])
        .args(["-p", &n_prompt.to_string()])
        .args(["-n", &GEN_TOKENS.to_string()])
        .args(["-r", "3", "-o", "json"])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "llama-bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let mut pp = None;
    let mut tg = None;
    for r in v.as_array()? {
        let ts = r["avg_ts"].as_f64()?;
        if r["n_gen"].as_u64() == Some(0) {
            pp = Some(ts);
        } else {
            tg = Some(ts);
        }
    }
    Some((pp?, tg?))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let path = common::model_path().await;
    let threads = available_cores();
    let t0 = Instant::now();
    let backend = EmbeddedBackend::load(EmbeddedConfig::new(&path))
        .await
        .unwrap();
    let load = t0.elapsed();

    let mut req = ChatRequest::new(vec![
        ChatMessage::system(
            "You are a warm, supportive companion for people between therapy sessions.",
        ),
        ChatMessage::user(
            "Write a long, detailed story about a lighthouse keeper who learns to rest.",
        ),
    ]);
    req.temperature = 0.0;
    req.max_tokens = GEN_TOKENS;

    // Warm-up (page in the weights).
    backend
        .generate(&req, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();

    // The machine may be shared: interleave our runs with llama-bench's so both see the same
    // load, and report the median and the best of each.
    let bench_bin = find_llama_bench();
    let mut ttfts = Vec::new();
    let mut tps = Vec::new();
    let mut bench_pp = Vec::new();
    let mut bench_tg = Vec::new();
    let mut prompt_tokens = 0;
    let mut gen_tokens = 0;
    for round in 0..runs {
        let g = backend
            .generate(&req, &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap();
        let ttft = g.time_to_first_token.unwrap_or(Duration::ZERO);
        let rest = g.elapsed.saturating_sub(ttft).as_secs_f64();
        prompt_tokens = g.prompt_tokens;
        gen_tokens = g.completion_tokens;
        ttfts.push(ttft.as_secs_f64() * 1000.0);
        if g.completion_tokens > 1 && rest > 0.0 {
            tps.push((g.completion_tokens - 1) as f64 / rest);
        }
        if let Some(bin) = &bench_bin {
            match run_llama_bench(bin, &path, threads, prompt_tokens) {
                Some((pp, tg)) => {
                    bench_pp.push(pp);
                    bench_tg.push(tg);
                }
                None if round == 0 => println!("llama-bench      failed to run"),
                None => {}
            }
        }
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let least = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::min);
    let ttft_ms = median(ttfts.clone());
    let gen_tps = median(tps.clone());

    // Two conversations at once on the one loaded model (each with its own context).
    let started = Instant::now();
    let (b1, b2, r1, r2) = (backend.clone(), backend.clone(), req.clone(), req.clone());
    let t1 = tokio::spawn(async move {
        b1.generate(&r1, &CancellationToken::new(), &mut |_| {})
            .await
    });
    let t2 = tokio::spawn(async move {
        b2.generate(&r2, &CancellationToken::new(), &mut |_| {})
            .await
    });
    let (g1, g2) = (t1.await.unwrap().unwrap(), t2.await.unwrap().unwrap());
    let both_tps =
        (g1.completion_tokens + g2.completion_tokens) as f64 / started.elapsed().as_secs_f64();
    let hwm = vm_hwm_mb().unwrap_or(f64::NAN);

    println!("model            {}", backend.describe().model_id);
    println!("threads          {threads}");
    println!("load             {:.0} ms", load.as_secs_f64() * 1000.0);
    println!("prompt           {prompt_tokens} tokens; generated {gen_tokens} tokens; {runs} runs");
    println!(
        "time to 1st tok  median {ttft_ms:.1} ms, best {:.1} ms",
        least(&ttfts)
    );
    println!(
        "generation       median {gen_tps:.1} tokens/s, best {:.1} tokens/s",
        best(&tps)
    );
    println!("2 concurrent     {both_tps:.1} tokens/s in total (prompt + generation, wall clock)");
    println!("peak RSS (VmHWM) {hwm:.0} MB (model loaded, after all runs)");

    if bench_tg.is_empty() {
        println!("llama-bench      not available (set LLAMA_BENCH to a llama-bench built from the same llama.cpp release): absolute figures only");
        return;
    }
    // llama-bench's prompt time for the same prompt size stands in for its TTFT.
    let b_ttft: Vec<f64> = bench_pp
        .iter()
        .map(|pp| prompt_tokens as f64 / pp * 1000.0)
        .collect();
    println!(
        "llama-bench      pp{prompt_tokens}: median {:.1} ms, best {:.1} ms; tg{GEN_TOKENS}: median {:.1} t/s, best {:.1} t/s",
        median(b_ttft.clone()),
        least(&b_ttft),
        median(bench_tg.clone()),
        best(&bench_tg)
    );
    println!(
        "ratio (medians)  generation {:.2}x, time to first token {:.2}x (1.0 = parity; goal >= 0.9)",
        gen_tps / median(bench_tg.clone()),
        median(b_ttft.clone()) / ttft_ms
    );
    println!(
        "ratio (bests)    generation {:.2}x, time to first token {:.2}x",
        best(&tps) / best(&bench_tg),
        least(&b_ttft) / least(&ttfts)
    );
}
