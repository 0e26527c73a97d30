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
