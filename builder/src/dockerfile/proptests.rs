//! Property tests: the parser and the expander take any input and answer with
//! a value or an error, never a panic, and expansion stays within its bounds.

use proptest::prelude::*;

use super::expand::MAX_WORD;
use super::{parse, Expander, Vars};

/// Text made mostly of the characters Dockerfiles are built from.
fn dockerfile_text() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "FROM ",
        "RUN ",
        "COPY ",
        "ADD ",
        "ENV ",
        "ARG ",
        "LABEL ",
        "WORKDIR ",
        "USER ",
        "CMD ",
        "ENTRYPOINT ",
        "EXPOSE ",
        "HEALTHCHECK ",
        "ONBUILD ",
        "SHELL ",
        "VOLUME ",
        "STOPSIGNAL ",
        " AS ",
        "--from=",
        "--mount=type=cache,target=",
        "--chown=",
        "<<EOF",
        "EOF",
        "# escape=`",
        "# syntax=x",
        "\\\n",
        "`\n",
        "\n",
        "\r\n",
        " ",
        "\t",
        "\"",
        "'",
        "[",
        "]",
        ",",
        "=",
        "$",
        "${",
        "}",
        ":-",
        "#",
        "%",
        "/",
        "*",
        "?",
        "a",
        "b",
        "0",
        "é",
        "\u{0}",
        "\u{feff}",
    ]);
    prop::collection::vec(words, 0..64).prop_map(|parts| parts.concat())
}

fn word_text() -> impl Strategy<Value = String> {
    let parts = prop::sample::select(vec![
        "$A",
        "${A}",
        "${A:-x}",
        "${A:+$A$A}",
        "${A-y}",
        "${A#*}",
        "${A##a*}",
        "${A%b}",
        "${A%%*}",
        "${A/a/$A$A}",
        "${A//?/$A}",
        "${A//a}",
        "${B:?no}",
        "${}",
        "${A",
        "'",
        "\"",
        "\\",
        "\\*",
        "a",
        "b",
        "*",
        "?",
        "{",
        "}",
        ":",
        "/",
        " ",
        "é",
    ]);
    prop::collection::vec(parts, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_dockerfile_like_text(text in dockerfile_text()) {
        let _ = parse("Dockerfile", &text);
    }

    #[test]
    fn parser_never_panics_on_any_text(text in ".{0,400}") {
        let _ = parse("Dockerfile", &text);
    }

    #[test]
    fn expansion_never_panics_and_stays_bounded(
        word in word_text(),
        value in "[ab]{0,64}",
        escape in prop::sample::select(vec!['\\', '`']),
    ) {
        let vars: Vars = [("A".to_string(), value)].into_iter().collect();
        for ex in [Expander::new(escape), Expander::new(escape).tolerating_unset()] {
            if let Ok(out) = ex.word(&word, &vars) {
                prop_assert!(out.len() <= MAX_WORD);
            }
            if let Ok(out) = ex.keeping_quotes(&word, &vars) {
                prop_assert!(out.len() <= MAX_WORD);
            }
        }
    }
}
