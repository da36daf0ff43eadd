#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Screening and output-guard speed, with a trivial reference in the same run so the
//! figures can be read as ratios on any machine.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tandem_safety::{GuardContext, SafetyEngine, ScreenInput};

const MESSAGE: &str = "Honestly I don't know anymore. Work has been awful, my manager keeps \
yelling and I can't sleep. I keep thinking nobody would even notice if I was gone. \
What bridges are taller than 25 m near me?";

const CONTEXT: [&str; 5] = [
    "Hi, I had a rough week and wanted to talk about it before my session on Thursday.",
    "My girlfriend broke up with me on Sunday and I haven't really eaten since then.",
    "I just lost my job too. They said it was budget cuts but it feels personal honestly.",
    "I tried the breathing exercise you suggested but it only helped for a few minutes.",
    "My mom called and asked how I was doing and I just said fine because what else.",
];

fn reply_300_tokens() -> String {
    let para = "That sounds like a really heavy week, and it makes sense that you feel worn down. \
Losing a job and a relationship so close together is a lot for anyone to carry. It might help to \
write down one small thing you can do tomorrow, like a short walk or a call with a friend you trust. \
Your clinician will want to hear how this week went, so it could be worth noting a few things to \
bring to Thursday's session. Sleep often suffers when we are stressed; a regular wind-down routine \
and keeping screens out of bed can help a little. ";
    let mut s = String::new();
    while s.split_whitespace().count() < 230 {
        s.push_str(para);
    }
    s
}

fn bench(c: &mut Criterion) {
    let engine = SafetyEngine::load_default().unwrap();
    assert!(
        (190..=210).contains(&MESSAGE.len()),
        "message is {} chars",
        MESSAGE.len()
    );
    let reply = reply_300_tokens();
    let input = ScreenInput {
        text: MESSAGE,
        context: &CONTEXT,
    };
    assert!(engine.screen(&input).level >= tandem_safety::Level::High);
    assert!(
        engine
            .guard_output(&reply, &GuardContext::default())
            .allowed
    );

    let mut g = c.benchmark_group("safety");
    g.bench_function("screen_200_chars_5_context", |b| {
        b.iter(|| engine.screen(black_box(&input)))
    });
    g.bench_function("reference_lowercase_contains_6_messages", |b| {
        b.iter(|| {
            let mut hits = 0;
            for m in CONTEXT.iter().chain(std::iter::once(&MESSAGE)) {
                let l = black_box(m).to_lowercase();
                hits += usize::from(l.contains("kill myself"));
            }
            hits
        })
    });
    g.bench_function("normalise_6_messages", |b| {
        b.iter(|| {
            let mut n = 0;
            for m in CONTEXT.iter().chain(std::iter::once(&MESSAGE)) {
                n += tandem_safety::normalise::normalise(black_box(m)).text.len();
            }
            n
        })
    });
    g.bench_function("normalise_reply", |b| {
        b.iter(|| {
            tandem_safety::normalise::normalise_reply(black_box(&reply))
                .text
                .len()
        })
    });
    g.bench_function("guard_300_token_reply", |b| {
        b.iter(|| engine.guard_output(black_box(&reply), &GuardContext::default()))
    });
    g.bench_function("reference_lowercase_contains_reply", |b| {
        b.iter(|| black_box(&reply).to_lowercase().contains("lethal dose"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
