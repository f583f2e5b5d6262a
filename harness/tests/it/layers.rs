//! Rooms point one way. `ARCHITECTURE.md`'s "Layers" block lists the harness's top-level
//! modules from the lowest layer up, and is the only place the order is written: a module
//! may import from its own layer or a lower one, never a higher one, and no files import
//! each other in a circle. A child module's use of what its parent defines (`super::Type`)
//! is no arrow of the circle: a folder's `mod.rs` and its files are one room, and the parent
//! is where the folder's shared types live. The imports are read from the
//! source as text: `use` trees, inline `crate::`/`super::`/`self::` paths, and paths through
//! a child module (`child::item`); test modules (`#[cfg(test)] mod …`) and comments are left
//! out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module's path from the crate root: `["run", "measure"]` is `src/run/measure.rs`.
type ModulePath = Vec<String>;

/// One import: the module that imports, the module it reaches, and the path as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Import {
    from: ModulePath,
    to: ModulePath,
    written: String,
}

/// The layers, lowest first: each a name and its top-level modules.
fn layers_of(architecture: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let text = format!("\n{architecture}");
    let after = text
        .split_once("\n## Layers\n")
        .ok_or("ARCHITECTURE.md has no `## Layers` section")?
        .1;
    let mut lines = after.lines().skip_while(|l| !l.starts_with("```"));
    lines.next().ok_or("the Layers section has no ``` block")?;
    let mut layers = Vec::new();
    for line in lines.take_while(|l| !l.starts_with("```")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((number, rest)) = words.split_first() else {
            continue;
        };
        let expected = (layers.len() + 1).to_string();
        if *number != expected {
            return Err(format!("layer `{line}`: expected number {expected} first"));
        }
        let Some((name, modules)) = rest.split_first() else {
            return Err(format!("layer `{line}`: no name"));
        };
        if modules.is_empty() {
            return Err(format!("layer `{line}`: no module"));
        }
        layers.push((
            (*name).to_owned(),
            modules.iter().map(|m| (*m).to_owned()).collect(),
        ));
    }
    if layers.is_empty() {
        return Err("the Layers block lists no layer".into());
    }
    Ok(layers)
}

/// The code of every module under `src`, the crate roots (`lib.rs`, `main.rs`) left out.
fn modules_in(src: &Path) -> BTreeMap<ModulePath, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<ModulePath, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read the source folder")
            .map(|e| e.expect("a folder entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 file name")
                .to_owned();
            if path.is_dir() {
                let mut inner = prefix.to_vec();
                inner.push(name);
                walk(&path, &inner, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut module = prefix.to_vec();
                match stem {
                    "mod" => {}
                    "lib" | "main" if prefix.is_empty() => continue,
                    _ => module.push(stem.to_owned()),
                }
                let text = std::fs::read_to_string(&path).expect("read a source file");
                out.insert(module, text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out
}

/// The code without comments and without test modules.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod ") && next.ends_with('{'))
        {
            let mut depth = 0i64;
            for inner in lines.by_ref() {
                depth += inner.matches('{').count() as i64 - inner.matches('}').count() as i64;
                if depth <= 0 {
                    break;
                }
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line.split(" // ").next().unwrap_or(line));
        code.push('\n');
    }
    code
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path a `use` tree names: `a::{b, c::{d as e, self}}` is `a::b`, `a::c::d`, `a::c`.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    fn parse(chars: &[char], at: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        let mut word = String::new();
        while *at < chars.len() {
            let c = chars[*at];
            if is_ident(c) || c == '*' {
                word.push(c);
                *at += 1;
            } else if c == ':' {
                if !word.is_empty() {
                    path.push(std::mem::take(&mut word));
                }
                *at += 1;
            } else if c == '{' {
                *at += 1;
                loop {
                    parse(chars, at, &path, out);
                    match chars.get(*at) {
                        Some(',') => *at += 1,
                        Some('}') => {
                            *at += 1;
                            break;
                        }
                        _ => break,
                    }
                }
                return;
            } else if c == ',' || c == '}' {
                break;
            } else if c.is_whitespace() {
                // `as alias`: the alias names nothing new.
                let rest: String = chars[*at..].iter().collect();
                let rest = rest.trim_start();
                if let Some(after) = rest.strip_prefix("as ") {
                    let skipped = chars.len() - *at - rest.len() + 3;
                    *at += skipped;
                    let alias_len = after
                        .trim_start()
                        .chars()
                        .take_while(|&c| is_ident(c))
                        .count();
                    *at += after.len() - after.trim_start().len() + alias_len;
                } else {
                    *at += 1;
                }
            } else {
                *at += 1;
            }
        }
        if !word.is_empty() && word != "self" && word != "*" {
            path.push(word);
        }
        if path.len() > prefix.len() || prefix.is_empty() {
            out.push(path);
        } else if !path.is_empty() {
            // `self` or `*` inside braces: the prefix itself.
            out.push(path);
        }
    }
    let chars: Vec<char> = tree.chars().collect();
    let mut out = Vec::new();
    parse(&chars, &mut 0, &[], &mut out);
    out
}

/// The `use` trees of some code, each without `use` and `;` (rustfmt starts every `use`
/// statement on a line of its own).
fn use_trees(code: &str) -> Vec<String> {
    let mut trees = Vec::new();
    let mut open: Option<String> = None;
    for line in code.lines() {
        let trimmed = line.trim_start();
        if open.is_none() {
            let body = ["use ", "pub use ", "pub(crate) use ", "pub(super) use "]
                .iter()
                .find_map(|start| trimmed.strip_prefix(start));
            open = body.map(|_| String::new());
            if let Some(body) = body {
                open = Some(body.to_owned());
            } else {
                continue;
            }
        } else if let Some(tree) = open.as_mut() {
            tree.push_str(trimmed);
        }
        if let Some(tree) = open.take() {
            match tree.split_once(';') {
                Some((done, _)) => trees.push(done.to_owned()),
                None => open = Some(tree),
            }
        }
    }
    trees
}

/// Paths written inline after `crate::`, `super::`, `self::` or a child module's name.
fn inline_paths(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == ':');
        if starts_word && is_ident(chars[i]) {
            let mut path = Vec::new();
            let mut j = i;
            loop {
                let word: String = chars[j..].iter().take_while(|&&c| is_ident(c)).collect();
                if word.is_empty() {
                    break;
                }
                j += word.chars().count();
                path.push(word);
                if chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') {
                    j += 2;
                } else {
                    break;
                }
            }
            let head = path[0].as_str();
            let anchored = matches!(head, "crate" | "super" | "self") || children.contains(head);
            if path.len() > 1 && anchored {
                out.push(path);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// The module a path reaches from `from`, when it is one of this crate's: the longest
/// prefix of the absolute path that is a module.
fn resolve(
    from: &[String],
    path: &[String],
    modules: &BTreeMap<ModulePath, String>,
) -> Option<ModulePath> {
    let (mut base, mut rest): (Vec<String>, &[String]) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("self") => (from.to_vec(), &path[1..]),
        Some("super") => (from[..from.len().saturating_sub(1)].to_vec(), &path[1..]),
        Some(head) => {
            let mut child = from.to_vec();
            child.push(head.to_owned());
            if !modules.contains_key(&child) {
                return None; // another crate (std, service, serde, …)
            }
            (from.to_vec(), path)
        }
        None => return None,
    };
    while rest.first().map(String::as_str) == Some("super") {
        base.pop();
        rest = &rest[1..];
    }
    let absolute: Vec<String> = base.into_iter().chain(rest.iter().cloned()).collect();
    (1..=absolute.len())
        .rev()
        .map(|k| absolute[..k].to_vec())
        .find(|prefix| modules.contains_key(prefix))
}

/// Every import between two different modules of the tree.
fn imports_of(modules: &BTreeMap<ModulePath, String>) -> BTreeSet<Import> {
    let mut imports = BTreeSet::new();
    for (module, text) in modules {
        let code = code_of(text);
        let children: BTreeSet<String> = modules
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .map(|m| m[module.len()].clone())
            .collect();
        let mut paths: Vec<Vec<String>> = use_trees(&code)
            .iter()
            .flat_map(|tree| expand_use(tree))
            .collect();
        paths.extend(inline_paths(&code, &children));
        for path in paths {
            if let Some(to) = resolve(module, &path, modules) {
                if &to != module {
                    imports.insert(Import {
                        from: module.clone(),
                        to,
                        written: path.join("::"),
                    });
                }
            }
        }
    }
    imports
}

fn file_of(module: &[String], modules: &BTreeMap<ModulePath, String>) -> String {
    let has_children = modules
        .keys()
        .any(|m| m.len() > module.len() && m.starts_with(module));
    if has_children {
        format!("src/{}/mod.rs", module.join("/"))
    } else {
        format!("src/{}.rs", module.join("/"))
    }
}

/// What breaks the layering: an import from a higher layer, a module in no layer (or in
/// two), a layer naming a module that does not exist.
fn layering_faults(
    layers: &[(String, Vec<String>)],
    modules: &BTreeMap<ModulePath, String>,
    imports: &BTreeSet<Import>,
) -> Vec<String> {
    let mut faults = Vec::new();
    let mut layer_of: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for (index, (name, members)) in layers.iter().enumerate() {
        for member in members {
            if layer_of.insert(member, (index, name)).is_some() {
                faults.push(format!("`{member}` is in two layers"));
            }
        }
    }
    let tops: BTreeSet<&str> = modules.keys().map(|m| m[0].as_str()).collect();
    for top in &tops {
        if !layer_of.contains_key(top) {
            faults.push(format!("module `{top}` is in no layer of ARCHITECTURE.md"));
        }
    }
    for member in layer_of.keys() {
        if !tops.contains(member) {
            faults.push(format!("layer module `{member}` does not exist"));
        }
    }
    for import in imports {
        let (Some(&(from, from_name)), Some(&(to, to_name))) = (
            layer_of.get(import.from[0].as_str()),
            layer_of.get(import.to[0].as_str()),
        ) else {
            continue;
        };
        if to > from {
            faults.push(format!(
                "{} (layer {} `{from_name}`) imports `{}` of {} (layer {} `{to_name}`, higher)",
                file_of(&import.from, modules),
                from + 1,
                import.written,
                file_of(&import.to, modules),
                to + 1,
            ));
        }
    }
    faults
}

/// The circles of files: every strongly connected component of more than one module, a
/// child's imports from its own ancestors left out.
fn circles(imports: &BTreeSet<Import>) -> Vec<Vec<ModulePath>> {
    let mut next: BTreeMap<&ModulePath, BTreeSet<&ModulePath>> = BTreeMap::new();
    for import in imports.iter().filter(|i| !i.from.starts_with(&i.to)) {
        next.entry(&import.from).or_default().insert(&import.to);
        next.entry(&import.to).or_default();
    }
    // Kosaraju: finish order on the graph, then components on the reversed graph.
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for &start in next.keys() {
        let mut stack = vec![(start, false)];
        while let Some((node, done)) = stack.pop() {
            if done {
                order.push(node);
                continue;
            }
            if !seen.insert(node) {
                continue;
            }
            stack.push((node, true));
            for &to in &next[node] {
                if !seen.contains(to) {
                    stack.push((to, false));
                }
            }
        }
    }
    let mut back: BTreeMap<&ModulePath, Vec<&ModulePath>> = BTreeMap::new();
    for (&from, tos) in &next {
        for &to in tos {
            back.entry(to).or_default().push(from);
        }
    }
    let mut assigned = BTreeSet::new();
    let mut found = Vec::new();
    for &root in order.iter().rev() {
        if assigned.contains(root) {
            continue;
        }
        let mut component = Vec::new();
        let mut stack = vec![root];
        assigned.insert(root);
        while let Some(node) = stack.pop() {
            component.push(node.clone());
            for &from in back.get(node).map(Vec::as_slice).unwrap_or(&[]) {
                if assigned.insert(from) {
                    stack.push(from);
                }
            }
        }
        if component.len() > 1 {
            component.sort();
            found.push(component);
        }
    }
    found
}

fn tree(files: &[(&str, &str)]) -> BTreeMap<ModulePath, String> {
    files
        .iter()
        .map(|(path, code)| {
            let module = path.split('/').map(str::to_owned).collect();
            (module, (*code).to_owned())
        })
        .collect()
}

#[test]
fn no_module_of_the_harness_imports_a_higher_layer_or_sits_in_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let architecture =
        std::fs::read_to_string(root.join("../ARCHITECTURE.md")).expect("read ARCHITECTURE.md");
    let layers = layers_of(&architecture).expect("ARCHITECTURE.md's layers");
    let modules = modules_in(&root.join("src"));
    let imports = imports_of(&modules);
    assert!(
        imports.len() > 100,
        "the reader found only {} imports: it no longer reads the source",
        imports.len()
    );
    let faults = layering_faults(&layers, &modules, &imports);
    assert!(
        faults.is_empty(),
        "rooms that point the wrong way:\n{}",
        faults.join("\n")
    );
    let found = circles(&imports);
    assert!(
        found.is_empty(),
        "files that import each other in a circle:\n{}",
        found
            .iter()
            .map(|c| c
                .iter()
                .map(|m| file_of(m, &modules))
                .collect::<Vec<_>>()
                .join(" ↔ "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn an_import_from_a_higher_layer_is_named_with_its_file() {
    let layers = layers_of("# A\n\n## Layers\n\n```text\n1  low   low\n2  high  high\n```\n")
        .expect("layers");
    let modules = tree(&[
        ("low", "use crate::high::Thing;\n"),
        ("high", "pub struct Thing;\nuse crate::low;\n"),
    ]);
    let imports = imports_of(&modules);
    let faults = layering_faults(&layers, &modules, &imports);
    assert_eq!(
        faults,
        vec!["src/low.rs (layer 1 `low`) imports `crate::high::Thing` of src/high.rs (layer 2 `high`, higher)"]
    );
}

#[test]
fn a_module_missing_from_the_layers_is_named() {
    let layers = layers_of("## Layers\n```\n1 low low\n```\n").expect("layers");
    let modules = tree(&[("low", ""), ("stray", "")]);
    let faults = layering_faults(&layers, &modules, &imports_of(&modules));
    assert_eq!(
        faults,
        vec!["module `stray` is in no layer of ARCHITECTURE.md"]
    );
}

#[test]
fn siblings_that_import_each_other_are_a_circle_a_child_using_its_parent_is_not() {
    let modules = tree(&[
        (
            "faults",
            "mod process;\nuse process::ProcessControl;\npub struct FaultError;\n",
        ),
        (
            "faults/process",
            "use super::FaultError;\nuse super::commands::Run;\n",
        ),
        (
            "faults/commands",
            "use super::process::ProcessControl;\npub struct Run;\n",
        ),
        ("other", "fn f() { crate::faults::process::go(); }\n"),
    ]);
    let found = circles(&imports_of(&modules));
    let faults = |child: &str| vec!["faults".to_owned(), child.to_owned()];
    assert_eq!(found, vec![vec![faults("commands"), faults("process")]]);
}

#[test]
fn use_trees_test_modules_and_comments_are_read_as_rust_reads_them() {
    let modules = tree(&[
        (
            "a",
            "//! `crate::c::X` in a comment is no import\n\
             use crate::{b::{self, Y as Z}, c};\n\
             pub(crate) use super::d::*;\n\
             fn f() { let _ = crate::e::go(); } // crate::f::no\n\
             #[cfg(test)]\nmod tests {\n    use crate::g::H;\n}\n",
        ),
        ("b", ""),
        ("c", ""),
        ("d", ""),
        ("e", ""),
        ("f", ""),
        ("g", ""),
    ]);
    let reached: BTreeSet<String> = imports_of(&modules)
        .into_iter()
        .map(|i| i.to.join("::"))
        .collect();
    let expected: BTreeSet<String> = ["b", "c", "d", "e"].map(String::from).into();
    assert_eq!(reached, expected);
}
