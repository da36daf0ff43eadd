#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests over every sum-scored built-in instrument: bounds, monotonicity, bands.

use proptest::prelude::*;
use tandem_measures::instrument::Method;
use tandem_measures::{Instrument, Registry, ScoreError};

fn registry() -> Registry {
    Registry::builtin().unwrap()
}

fn sum_instruments() -> Vec<Instrument> {
    registry()
        .instruments()
        .iter()
        .filter(|i| i.scoring.method == Method::Sum)
        .cloned()
        .collect()
}

/// A valid complete answer set for instrument `index` of `sum_instruments()`.
fn answers_for(instrument: &Instrument) -> impl Strategy<Value = Vec<u8>> {
    let per_item: Vec<_> = (0..instrument.items.len())
        .map(|i| {
            let values: Vec<u8> = instrument.options_for(i).iter().map(|o| o.value).collect();
            proptest::sample::select(values)
        })
        .collect();
    per_item
}

fn instrument_and_answers() -> impl Strategy<Value = (Instrument, Vec<u8>)> {
    let instruments = sum_instruments();
    proptest::sample::select(instruments).prop_flat_map(|i| (Just(i.clone()), answers_for(&i)))
}

proptest! {
    #[test]
    fn total_is_within_bounds_and_in_exactly_one_band((inst, answers) in instrument_and_answers()) {
        let r = registry();
        let given: Vec<Option<u8>> = answers.iter().copied().map(Some).collect();
        let s = r.score(&inst.id, &given).unwrap();
        prop_assert!(s.total <= inst.max_total());
        prop_assert_eq!(s.total, answers.iter().map(|&v| u32::from(v)).sum::<u32>());
        let scaled = s.banded_value();
        let containing: Vec<_> = inst.bands.iter().filter(|b| b.min <= scaled && scaled <= b.max).collect();
        prop_assert_eq!(containing.len(), 1);
        prop_assert_eq!(&containing[0].label, &s.band);
    }

    #[test]
    fn total_is_monotone_in_each_item((inst, answers) in instrument_and_answers(), item in 0usize..9) {
        let r = registry();
        let item = item % inst.items.len();
        let max = inst.item_max(item);
        let given: Vec<Option<u8>> = answers.iter().copied().map(Some).collect();
        let before = r.score(&inst.id, &given).unwrap();
        let mut raised = given.clone();
        let next = inst.options_for(item).iter().map(|o| o.value).filter(|&v| v > answers[item]).min();
        if let Some(next) = next {
            raised[item] = Some(next);
            let after = r.score(&inst.id, &raised).unwrap();
            prop_assert!(after.total > before.total);
            // Band order never goes backwards either.
            let pos = |label: &str| inst.bands.iter().position(|b| b.label == label).unwrap();
            prop_assert!(pos(&after.band) >= pos(&before.band));
        } else {
            prop_assert_eq!(answers[item], max);
        }
    }

    #[test]
    fn out_of_range_values_are_rejected((inst, answers) in instrument_and_answers(), item in 0usize..9, bad in 0u8..=255) {
        let item = item % inst.items.len();
        prop_assume!(!inst.options_for(item).iter().any(|o| o.value == bad));
        let mut given: Vec<Option<u8>> = answers.iter().copied().map(Some).collect();
        given[item] = Some(bad);
        let err = registry().score(&inst.id, &given).unwrap_err();
        let is_out_of_range = matches!(err, ScoreError::OutOfRange { item: n, .. } if n == item + 1);
        prop_assert!(is_out_of_range);
    }

    #[test]
    fn any_missing_item_is_refused((inst, answers) in instrument_and_answers(), item in 0usize..9) {
        let item = item % inst.items.len();
        let mut given: Vec<Option<u8>> = answers.iter().copied().map(Some).collect();
        given[item] = None;
        let is_incomplete = matches!(registry().score(&inst.id, &given), Err(ScoreError::Incomplete { .. }));
        prop_assert!(is_incomplete);
    }

    #[test]
    fn cssrs_risk_is_monotone(answers in proptest::collection::vec(0u8..=1, 5), q6 in 0u8..=2, item in 0usize..6) {
        let r = registry();
        let mut given: Vec<Option<u8>> = answers.iter().copied().map(Some).collect();
        given.push(Some(q6));
        let before = r.score("C-SSRS", &given).unwrap();
        let max = if item == 5 { 2 } else { 1 };
        given[item] = Some(max);
        let after = r.score("C-SSRS", &given).unwrap();
        prop_assert!(after.risk_level >= before.risk_level);
    }
}

#[test]
fn bands_cover_every_possible_score_without_gaps() {
    for inst in sum_instruments() {
        let max = inst.max_scaled();
        for score in 0..=max {
            let n = inst
                .bands
                .iter()
                .filter(|b| b.min <= score && score <= b.max)
                .count();
            assert_eq!(n, 1, "{} score {score}", inst.id);
        }
        assert_eq!(inst.bands.first().unwrap().min, 0);
        assert_eq!(inst.bands.last().unwrap().max, max);
        for pair in inst.bands.windows(2) {
            assert_eq!(pair[0].max + 1, pair[1].min, "{}", inst.id);
        }
    }
}

#[test]
fn every_reachable_total_maps_to_a_band() {
    let r = registry();
    // Exhaustive for the two-item screeners and WHO-5 (6^5 = 7776 forms).
    for id in ["PHQ-2", "GAD-2", "WHO-5"] {
        let inst = r.get(id).unwrap().clone();
        let n = inst.items.len();
        let base = u32::from(inst.item_max(0)) + 1;
        for code in 0..base.pow(u32::try_from(n).unwrap()) {
            let mut c = code;
            let answers: Vec<Option<u8>> = (0..n)
                .map(|_| {
                    let v = u8::try_from(c % base).unwrap();
                    c /= base;
                    Some(v)
                })
                .collect();
            let s = r.score(id, &answers).unwrap();
            assert!(inst.bands.iter().any(|b| b.label == s.band));
        }
    }
}
