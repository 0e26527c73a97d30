//! man/wickd.conf.5 documents every key wickd knows.

#[test]
fn every_known_key_is_in_the_man_page() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../man/wickd.conf.5");
    let page = std::fs::read_to_string(&path).expect("read man/wickd.conf.5");
    let missing: Vec<&str> = wick_conf::keys::KEYS
        .iter()
        .map(|k| k.0)
        .chain(wick_conf::options::REQUEST_KEYS.iter().copied())
        .filter(|k| !page.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from man/wickd.conf.5: {missing:?}"
    );
    assert!(
        page.starts_with(".\\\"") && page.contains(".TH WICKD.CONF 5"),
        "not a man page"
    );
}

/// One `.TP` entry of the page: its name (`.B` line) and its text.
fn entries(page: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut lines = page.lines().peekable();
    while let Some(l) = lines.next() {
        if l != ".TP" {
            continue;
        }
        let Some(name) = lines.next().and_then(|n| n.strip_prefix(".B ")) else {
            continue;
        };
        let mut text = String::new();
        while let Some(n) = lines.peek() {
            if n.starts_with(".TP") || n.starts_with(".SS") || n.starts_with(".SH") {
                break;
            }
            text.push_str(n);
            text.push('\n');
            lines.next();
        }
        out.push((name.trim().to_string(), text));
    }
    out
}

/// The page marks each key as wickd treats it (wick_conf::support): "Accepted, not
/// acted on yet" for keys it ignores with a warning, "Refused at start-up" for keys
/// whose absence would open access, neither for keys it acts on.
#[test]
fn the_man_page_marks_keys_as_wickd_treats_them() {
    use wick_conf::support::{support, Support};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../man/wickd.conf.5");
    let page = std::fs::read_to_string(&path).expect("read man/wickd.conf.5");
    let mut wrong = Vec::new();
    let all = entries(&page);
    for (key, module, _) in wick_conf::keys::KEYS {
        // A key's own entry, or a module's entry whose first line lists it.
        let subject_of: Vec<&String> = all
            .iter()
            .filter(|(name, text)| {
                name == key
                    || (name == module
                        && text
                            .lines()
                            .next()
                            .unwrap_or("")
                            .split([',', ' '])
                            .any(|w| w.trim_end_matches('.') == *key))
            })
            .map(|(_, text)| text)
            .collect();
        if subject_of.is_empty() {
            wrong.push(format!("{key}: no entry names it"));
            continue;
        }
        for text in subject_of {
            let marked = if text.contains(".I Refused at start-up.") {
                "refused"
            } else if text.contains(".I Accepted, not acted on yet.") {
                "ignored"
            } else {
                "acted"
            };
            let is = match support(key) {
                Support::Acted => "acted",
                Support::Ignored => "ignored",
                Support::Refused(_) => "refused",
            };
            if marked != is {
                wrong.push(format!("{key}: the page says {marked}, wickd has it {is}"));
            }
        }
    }
    assert!(wrong.is_empty(), "man/wickd.conf.5:\n{}", wrong.join("\n"));
}
