//! The normalised configuration `wickd -p` prints, in the style of lighttpd's
//! config_print: every value after evaluation (variables, `+=`, includes resolved),
//! blocks nested as in the file with their `# block N` number, else chains.
//! Unlike lighttpd's, the output is itself a valid configuration (no `config { }`
//! wrapper; `var.*` are already substituted), so `wickd -p` also flattens includes.

use crate::lexer::op_str;
use crate::model::{BlockId, Config, Value};
use std::fmt::Write as _;

const INDENT: &str = "    ";

/// The whole configuration as text that wickd (and lighttpd) can read back.
pub fn normalized(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {} (normalised; block 0: global)",
        config.main_file.display()
    );
    print_settings(config, 0, 0, &mut out);
    print_children(config, 0, 0, &mut out);
    out
}

fn print_settings(config: &Config, id: BlockId, depth: usize, out: &mut String) {
    let b = &config.blocks[id];
    let width = b.settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
    for s in &b.settings {
        indent(out, depth);
        let _ = write!(out, "{:width$} = ", s.key);
        print_value(&s.value, depth, out);
        out.push('\n');
    }
}

/// The first block of each chain under `id`, in file order.
fn print_children(config: &Config, id: BlockId, depth: usize, out: &mut String) {
    for (cid, c) in config.blocks.iter().enumerate() {
        if cid != 0 && c.parent == Some(id) && c.else_of.is_none() {
            out.push('\n');
            indent(out, depth);
            print_chain(config, cid, depth, out);
            out.push('\n');
        }
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\\""))
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str(INDENT);
    }
}

fn print_value(v: &Value, depth: usize, out: &mut String) {
    match v {
        Value::Str(s) => out.push_str(&quote(s)),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Array(items) if items.is_empty() => out.push_str("( )"),
        Value::Array(items) => {
            out.push_str("(\n");
            for (k, v) in items {
                indent(out, depth + 1);
                if let Some(k) = k {
                    out.push_str(&quote(k));
                    out.push_str(" => ");
                }
                print_value(v, depth + 1, out);
                out.push_str(",\n");
            }
            indent(out, depth);
            out.push(')');
        }
    }
}

fn header(config: &Config, id: BlockId) -> String {
    match &config.blocks[id].cond {
        None => String::new(),
        Some(c) => {
            use crate::model::CondField as F;
            let field = match &c.field {
                F::Host => "$HTTP[\"host\"]".to_string(),
                F::Url => "$HTTP[\"url\"]".to_string(),
                F::QueryString => "$HTTP[\"querystring\"]".to_string(),
                F::RemoteIp => "$HTTP[\"remoteip\"]".to_string(),
                F::Scheme => "$HTTP[\"scheme\"]".to_string(),
                F::RequestMethod => "$HTTP[\"request-method\"]".to_string(),
                F::RequestHeader(h) => format!("$REQUEST_HEADER[{}]", quote(h)),
                F::ServerSocket => "$SERVER[\"socket\"]".to_string(),
            };
            format!("{field} {} {}", op_str(c.op), quote(&c.pattern))
        }
    }
}

fn print_block(config: &Config, id: BlockId, depth: usize, out: &mut String) {
    let head = header(config, id);
    if !head.is_empty() {
        out.push_str(&head);
        out.push(' ');
    }
    out.push_str("{\n");
    indent(out, depth + 1);
    let _ = writeln!(out, "# block {id}");
    print_settings(config, id, depth + 1, out);
    print_children(config, id, depth + 1, out);
    indent(out, depth);
    out.push('}');
    if head.is_empty() {
        out.push_str(" # end of else");
    } else {
        let _ = write!(out, " # end of {head}");
    }
}

fn print_chain(config: &Config, first: BlockId, depth: usize, out: &mut String) {
    let mut id = first;
    loop {
        print_block(config, id, depth, out);
        match config.blocks.iter().position(|b| b.else_of == Some(id)) {
            Some(next) => {
                out.push('\n');
                indent(out, depth);
                out.push_str("else ");
                id = next;
            }
            None => break,
        }
    }
}
