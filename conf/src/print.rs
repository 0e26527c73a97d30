//! The normalised configuration `wickd -p` prints, in the style of lighttpd's
//! config_print: every value after evaluation (variables, `+=`, includes resolved),
//! blocks nested as in the file with their `# block N` number, else chains.
//! Unlike lighttpd's, the output is itself a valid configuration (no `config { }`
//! wrapper; `var.*` are already substituted), so `wickd -p` also flattens includes.

use crate::lexer::op_str;
use crate::model::{BlockId, CondField, Config, Value};
use std::fmt::Write as _;

const INDENT: &str = "    ";

/// The whole configuration as text that wickd (and lighttpd) can read back.
pub fn normalized(config: &Config) -> String {
    let n = config.blocks.len();
    // The first block of each else chain under each parent, and each chain's links.
    let mut children = vec![Vec::new(); n];
    let mut next = vec![None; n];
    for (id, b) in config.blocks.iter().enumerate().skip(1) {
        match (b.else_of, b.parent) {
            (Some(prev), _) if prev < n => next[prev] = Some(id),
            (None, Some(parent)) if parent < n => children[parent].push(id),
            _ => {}
        }
    }
    let mut p = Printer {
        config,
        children,
        next,
        out: String::new(),
    };
    let _ = writeln!(
        p.out,
        "# {} (normalised; block 0: global)",
        config.main_file.display()
    );
    p.settings(0, 0);
    p.children(0, 0);
    p.out
}

struct Printer<'c> {
    config: &'c Config,
    children: Vec<Vec<BlockId>>,
    next: Vec<Option<BlockId>>,
    out: String,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\\""))
}

fn header(config: &Config, id: BlockId) -> String {
    let Some(c) = &config.blocks[id].cond else {
        return String::new();
    };
    let field = match &c.field {
        CondField::Host => "$HTTP[\"host\"]".to_string(),
        CondField::Url => "$HTTP[\"url\"]".to_string(),
        CondField::QueryString => "$HTTP[\"querystring\"]".to_string(),
        CondField::RemoteIp => "$HTTP[\"remoteip\"]".to_string(),
        CondField::Scheme => "$HTTP[\"scheme\"]".to_string(),
        CondField::RequestMethod => "$HTTP[\"request-method\"]".to_string(),
        CondField::RequestHeader(h) => format!("$REQUEST_HEADER[{}]", quote(h)),
        CondField::ServerSocket => "$SERVER[\"socket\"]".to_string(),
    };
    format!("{field} {} {}", op_str(c.op), quote(&c.pattern))
}

impl Printer<'_> {
    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str(INDENT);
        }
    }

    fn value(&mut self, v: &Value, depth: usize) {
        match v {
            Value::Str(s) => self.out.push_str(&quote(s)),
            Value::Int(i) => {
                let _ = write!(self.out, "{i}");
            }
            Value::Array(items) if items.is_empty() => self.out.push_str("( )"),
            Value::Array(items) => {
                self.out.push_str("(\n");
                for (k, v) in items {
                    self.indent(depth + 1);
                    if let Some(k) = k {
                        self.out.push_str(&quote(k));
                        self.out.push_str(" => ");
                    }
                    self.value(v, depth + 1);
                    self.out.push_str(",\n");
                }
                self.indent(depth);
                self.out.push(')');
            }
        }
    }

    fn settings(&mut self, id: BlockId, depth: usize) {
        let b = &self.config.blocks[id];
        let width = b.settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
        for s in &b.settings {
            self.indent(depth);
            let _ = write!(self.out, "{:width$} = ", s.key);
            self.value(&s.value, depth);
            self.out.push('\n');
        }
    }

    fn children(&mut self, id: BlockId, depth: usize) {
        for i in 0..self.children[id].len() {
            let cid = self.children[id][i];
            self.out.push('\n');
            self.indent(depth);
            self.chain(cid, depth);
            self.out.push('\n');
        }
    }

    fn chain(&mut self, first: BlockId, depth: usize) {
        let mut id = first;
        loop {
            self.block(id, depth);
            match self.next[id] {
                Some(next) => {
                    self.out.push('\n');
                    self.indent(depth);
                    self.out.push_str("else ");
                    id = next;
                }
                None => break,
            }
        }
    }

    fn block(&mut self, id: BlockId, depth: usize) {
        let head = header(self.config, id);
        if !head.is_empty() {
            self.out.push_str(&head);
            self.out.push(' ');
        }
        self.out.push_str("{\n");
        self.indent(depth + 1);
        let _ = writeln!(self.out, "# block {id}");
        self.settings(id, depth + 1);
        self.children(id, depth + 1);
        self.indent(depth);
        self.out.push('}');
        if head.is_empty() {
            self.out.push_str(" # end of else");
        } else {
            let _ = write!(self.out, " # end of {head}");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::load_str;
    use std::path::Path;

    #[test]
    fn blocks_chains_and_numbers() {
        let c = load_str(
            "server.tag = \"t\"\n$HTTP[\"host\"] == \"a\" {\n $HTTP[\"url\"] =^ \"/x\" { server.name = \"n\" }\n} else {\n server.tag = \"e\"\n}\n",
            "p.conf",
            Path::new(""),
        )
        .expect("load");
        let out = super::normalized(&c);
        let want = "# p.conf (normalised; block 0: global)\nserver.tag = \"t\"\n\n\
$HTTP[\"host\"] == \"a\" {\n    # block 1\n\n    $HTTP[\"url\"] =^ \"/x\" {\n        # block 2\n        server.name = \"n\"\n    } # end of $HTTP[\"url\"] =^ \"/x\"\n} # end of $HTTP[\"host\"] == \"a\"\n\
else {\n    # block 3\n    server.tag = \"e\"\n} # end of else\n";
        assert_eq!(out, want);
    }
}
