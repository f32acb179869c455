//! Every statement of the store, prepared on both migrated databases: a
//! run-time stand-in for compile-time checked queries. A statement naming
//! a wrong column or table, or SQL one database does not accept, fails
//! here with its file, line and the database's error, whether or not a
//! test happens to run it.
//!
//! The statements are read from the store's source (each `*.rs` of this
//! directory but [`NOT_AREAS`], so that a new area is covered without
//! editing this test), parsed with `syn`: the first argument of every
//! call of [`METHODS`] (`tx.execute(sql, params)`, `Tx::query_one(tx,
//! sql, params)`), inside macros (`run!`) too. The SQL may be a literal;
//! a `format!` whose `{name}`s are literals, `const`s, locals bound to
//! either, a function's parameter (each literal its callers pass) or an
//! enum's method that matches `self` to literals (`chain.table()`); or a
//! local bound to a `match`. A `match` (or an `if x == E::V`) ties what it
//! binds to its arm: `chain.table()` and `match chain { … }` give one
//! statement per variant, never a mix, and `match tx.dialect()` sends each
//! arm to its database only. A statement the reader cannot resolve fails
//! the test, unless [`UNRESOLVED`] lists it with the reason.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Instant;

use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{Expr, Lit, Pat};

use super::sql::Dialect;
use super::StoreOptions;

/// The methods of [`super::sql::Tx`] that run a statement.
const METHODS: [&str; 4] = ["execute", "query", "query_opt", "query_one"];

/// The files of the store's directory that hold no operation: (file, why).
const NOT_AREAS: &[(&str, &str)] =
    &[("schemas.rs", "a test comparing the schemas (its own catalog queries)"), ("statements.rs", "this test")];

/// Calls whose statement cannot be read, on purpose: (file, function, why).
const UNRESOLVED: &[(&str, &str, &str)] = &[
    ("sql.rs", "query_opt", "the seam's default method: it forwards its caller's statement"),
    ("sql.rs", "query_one", "the seam's default method: it forwards its caller's statement"),
];

/// The number of calls found when this test was written (call sites, not
/// variants): the reader must keep finding nearly all of them.
const CALLS_WHEN_WRITTEN: usize = 129;

/// One statement as one database receives it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Statement {
    file: String,
    line: usize,
    function: String,
    postgres: bool,
    sql: String,
}

impl Statement {
    fn dialect(&self) -> Dialect {
        if self.postgres {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        }
    }

    fn failure(&self, error: &dyn std::fmt::Display) -> String {
        format!(
            "{}:{} ({}): {error}\n    {}",
            self.file,
            self.line,
            self.function,
            self.sql.split_whitespace().collect::<Vec<_>>().join(" ")
        )
    }
}

#[derive(Debug, Default)]
struct Extracted {
    statements: Vec<Statement>,
    /// (file, function, line, why).
    unresolved: Vec<(String, String, usize, String)>,
    /// Calls of [`METHODS`] found.
    calls: usize,
}

/// Which variants of a value (a match's scrutinee) a candidate holds for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allow {
    Only(BTreeSet<String>),
    Not(BTreeSet<String>),
}

impl Allow {
    fn and(&self, other: &Allow) -> Option<Allow> {
        let allow = match (self, other) {
            (Allow::Only(a), Allow::Only(b)) => Allow::Only(a.intersection(b).cloned().collect()),
            (Allow::Only(a), Allow::Not(b)) | (Allow::Not(b), Allow::Only(a)) => Allow::Only(a.difference(b).cloned().collect()),
            (Allow::Not(a), Allow::Not(b)) => Allow::Not(a.union(b).cloned().collect()),
        };
        (allow != Allow::Only(BTreeSet::new())).then_some(allow)
    }

    fn admits(&self, variant: &str) -> bool {
        match self {
            Allow::Only(set) => set.contains(variant),
            Allow::Not(set) => !set.contains(variant),
        }
    }
}

/// Scrutinee (its source text) → the variants it holds.
type When = BTreeMap<String, Allow>;

fn and(a: &When, b: &When) -> Option<When> {
    let mut out = a.clone();
    for (key, allow) in b {
        let joined = match out.get(key) {
            Some(held) => held.and(allow)?,
            None => allow.clone(),
        };
        out.insert(key.clone(), joined);
    }
    Some(out)
}

/// A text a statement may hold, and when.
#[derive(Debug, Clone)]
struct Cand {
    text: String,
    when: When,
}

type Resolved = Result<Vec<Cand>, String>;

/// A tuple's elements (each a literal, or not), and when.
type Row = (Vec<Option<String>>, When);

/// What an enum's method gives: a text or a tuple of them.
#[derive(Debug, Clone)]
enum Shape {
    Text(String),
    Tuple(Vec<Option<String>>),
}

/// A method matching `self` to literals: each arm's variants (`None`: any
/// other) and what it gives.
type Method = Vec<(Option<BTreeSet<String>>, Shape)>;

#[derive(Default)]
struct Context {
    /// `const NAME: &str = "…"` of the areas: name → (file, text).
    consts: HashMap<String, Vec<(String, Option<String>)>>,
    /// Enum methods of the crate, by name.
    methods: HashMap<String, Vec<Method>>,
    /// Calls of plain functions in the areas: name → each call's string
    /// literal arguments.
    calls: HashMap<String, Vec<Vec<Option<String>>>>,
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test"))
}

fn line_of(node: &impl Spanned) -> usize {
    node.span().start().line
}

/// An expression's source text, whitespace removed: the key a match's arms
/// and an enum method's receiver share.
fn key_of(expr: &Expr) -> String {
    let span = expr.span();
    span.source_text().map(|t| t.split_whitespace().collect()).unwrap_or_else(|| format!("{}:{}", span.start().line, span.start().column))
}

fn string_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Some(s.value()),
        Expr::Reference(r) => string_literal(&r.expr),
        Expr::Paren(p) => string_literal(&p.expr),
        Expr::Group(g) => string_literal(&g.expr),
        _ => None,
    }
}

/// A block's value, when it has no statement but its tail.
fn tail(expr: &Expr) -> &Expr {
    match expr {
        Expr::Block(b) if b.block.stmts.len() == 1 => match &b.block.stmts[0] {
            syn::Stmt::Expr(e, None) => tail(e),
            _ => expr,
        },
        Expr::Paren(p) => tail(&p.expr),
        Expr::Group(g) => tail(&g.expr),
        _ => expr,
    }
}

/// The variants an arm's pattern names; `None`: any (a binding, `_`).
fn variants(pat: &Pat) -> Option<BTreeSet<String>> {
    let last = |path: &syn::Path| path.segments.last().map(|s| s.ident.to_string());
    match pat {
        Pat::Path(p) => last(&p.path).map(|v| BTreeSet::from([v])),
        Pat::TupleStruct(p) => last(&p.path).map(|v| BTreeSet::from([v])),
        Pat::Struct(p) => last(&p.path).map(|v| BTreeSet::from([v])),
        Pat::Ident(i) if i.subpat.is_none() && i.ident.to_string().starts_with(char::is_uppercase) => {
            Some(BTreeSet::from([i.ident.to_string()]))
        }
        Pat::Or(o) => o.cases.iter().map(variants).try_fold(BTreeSet::new(), |mut all, v| {
            all.extend(v?);
            Some(all)
        }),
        Pat::Reference(r) => variants(&r.pat),
        Pat::Paren(p) => variants(&p.pat),
        Pat::Lit(l) => l.span().source_text().map(|t| BTreeSet::from([t])),
        _ => None,
    }
}

/// A `match`'s values: each arm's, tied to the variants the arm admits
/// (a value whose own condition contradicts its arm's is dropped).
fn each_arm<T>(m: &syn::ExprMatch, values: impl Fn(&Expr) -> Result<Vec<(T, When)>, String>) -> Result<Vec<(T, When)>, String> {
    let key = key_of(&m.expr);
    let allows = arm_allows(&m.arms.iter().map(|a| variants(&a.pat)).collect::<Vec<_>>());
    let mut out = Vec::new();
    for (arm, allow) in m.arms.iter().zip(allows) {
        let arm_when = When::from([(key.clone(), allow)]);
        for (value, when) in values(&arm.body)? {
            if let Some(when) = and(&when, &arm_when) {
                out.push((value, when));
            }
        }
    }
    Ok(out)
}

/// Each arm's [`Allow`]: its variants, or (a catch-all) none of the others'.
fn arm_allows(arms: &[Option<BTreeSet<String>>]) -> Vec<Allow> {
    arms.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Some(set) => Allow::Only(set.clone()),
            None => Allow::Not(arms.iter().enumerate().filter(|(j, _)| *j != i).filter_map(|(_, v)| v.clone()).flatten().collect()),
        })
        .collect()
}

fn macro_exprs(mac: &syn::Macro) -> Option<Vec<Expr>> {
    mac.parse_body_with(Punctuated::<Expr, syn::Token![,]>::parse_terminated).ok().map(|p| p.into_iter().collect())
}

fn mentions_method(tokens: proc_macro2::TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => METHODS.iter().any(|m| i == m),
        proc_macro2::TokenTree::Group(g) => mentions_method(g.stream()),
        _ => false,
    })
}

/// The names a pattern binds.
fn bound_names(pat: &Pat) -> Vec<String> {
    struct Names(Vec<String>);
    impl<'ast> Visit<'ast> for Names {
        fn visit_pat_ident(&mut self, i: &'ast syn::PatIdent) {
            self.0.push(i.ident.to_string());
            visit::visit_pat_ident(self, i);
        }
    }
    let mut names = Names(Vec::new());
    names.visit_pat(pat);
    names.0
}

/// Collects the enum methods (`fn m(self) -> &str { match self { … } }`).
struct Methods<'a>(&'a mut HashMap<String, Vec<Method>>);

impl<'ast> Visit<'ast> for Methods<'_> {
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        let only_self = f.sig.inputs.len() == 1 && matches!(f.sig.inputs.first(), Some(syn::FnArg::Receiver(_)));
        if let ([syn::Stmt::Expr(Expr::Match(m), None)], true) = (f.block.stmts.as_slice(), only_self) {
            if matches!(&*m.expr, Expr::Path(p) if p.path.is_ident("self")) {
                let shape = |e: &Expr| match tail(e) {
                    Expr::Tuple(t) => Some(Shape::Tuple(t.elems.iter().map(string_literal).collect())),
                    e => string_literal(e).map(Shape::Text),
                };
                let arms: Option<Method> = m.arms.iter().map(|a| Some((variants(&a.pat), shape(&a.body)?))).collect();
                if let Some(arms) = arms {
                    self.0.entry(f.sig.ident.to_string()).or_default().push(arms);
                }
            }
        }
        visit::visit_impl_item_fn(self, f);
    }
}

/// Collects the consts and plain function calls of the areas.
struct Declarations<'a> {
    file: &'a str,
    cx: &'a mut Context,
}

impl<'ast> Visit<'ast> for Declarations<'_> {
    fn visit_item_const(&mut self, c: &'ast syn::ItemConst) {
        self.cx.consts.entry(c.ident.to_string()).or_default().push((self.file.to_owned(), string_literal(&c.expr)));
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if let Expr::Path(p) = &*call.func {
            if let Some(name) = p.path.segments.last() {
                let args = call.args.iter().map(string_literal).collect();
                self.cx.calls.entry(name.ident.to_string()).or_default().push(args);
            }
        }
        visit::visit_expr_call(self, call);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        for e in macro_exprs(mac).unwrap_or_default() {
            self.visit_expr(&e);
        }
    }
}

/// Walks an area in order, its bindings in scope, and reads each call.
struct Walker<'a> {
    cx: &'a Context,
    file: &'a str,
    function: String,
    /// The function's parameters, in order; `None`: a method's.
    params: Option<Vec<String>>,
    scopes: Vec<HashMap<String, Resolved>>,
    when: Vec<(String, Allow)>,
    out: &'a mut Extracted,
}

impl Walker<'_> {
    fn lookup(&self, name: &str) -> Resolved {
        if let Some(bound) = self.scopes.iter().rev().find_map(|s| s.get(name)) {
            return bound.clone().map_err(|why| format!("`{name}`: {why}"));
        }
        if let Some(params) = &self.params {
            if let Some(index) = params.iter().position(|p| p == name) {
                return self.passed_by_callers(index).map_err(|why| format!("the parameter `{name}`: {why}"));
            }
        }
        if let Some(consts) = self.cx.consts.get(name) {
            let chosen: Vec<_> = match consts.iter().filter(|(file, _)| file == self.file).collect::<Vec<_>>() {
                here if !here.is_empty() => here,
                _ => consts.iter().collect(),
            };
            return match chosen.as_slice() {
                [(_, Some(text))] => Ok(vec![Cand { text: text.clone(), when: When::new() }]),
                [(file, None)] => Err(format!("the const `{name}` of {file} is not a string literal")),
                _ => Err(format!("the const `{name}` is declared in several files")),
            };
        }
        Err(format!("`{name}` is not bound to a string this test can read"))
    }

    /// A parameter's values: each literal the callers pass.
    fn passed_by_callers(&self, index: usize) -> Resolved {
        let calls = self.cx.calls.get(&self.function).ok_or("no call of its function")?;
        calls
            .iter()
            .map(|args| {
                let text = args.get(index).cloned().flatten().ok_or("a caller passes no string literal")?;
                Ok(Cand { text, when: When::new() })
            })
            .collect()
    }

    /// An enum method's values on `receiver`, tied to it.
    fn method(&self, receiver: &Expr, name: &str) -> Result<Vec<(Shape, When)>, String> {
        let method = match self.cx.methods.get(name).map(Vec::as_slice) {
            Some([method]) => method,
            Some(_) => return Err(format!("`{name}` names several enum methods")),
            None => return Err(format!("`{name}` is no method matching `self` to literals")),
        };
        let allows = arm_allows(&method.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>());
        // `Chain::AuditEvents.table()`: one variant, known here.
        let known = match receiver {
            Expr::Path(p) if p.path.segments.len() > 1 => p.path.segments.last().map(|s| s.ident.to_string()),
            _ => None,
        };
        Ok(method
            .iter()
            .zip(allows)
            .filter_map(|((_, shape), allow)| match &known {
                Some(variant) => allow.admits(variant).then(|| (shape.clone(), When::new())),
                None => Some((shape.clone(), When::from([(key_of(receiver), allow)]))),
            })
            .collect())
    }

    fn resolve(&self, expr: &Expr) -> Resolved {
        match expr {
            Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Ok(vec![Cand { text: s.value(), when: When::new() }]),
            Expr::Reference(r) => self.resolve(&r.expr),
            Expr::Paren(p) => self.resolve(&p.expr),
            Expr::Group(g) => self.resolve(&g.expr),
            Expr::Block(_) if !std::ptr::eq(tail(expr), expr) => self.resolve(tail(expr)),
            Expr::Macro(m) if m.mac.path.is_ident("format") => self.format(&m.mac),
            Expr::Path(p) => match p.path.segments.last() {
                Some(last) if p.qself.is_none() => self.lookup(&last.ident.to_string()),
                _ => Err("a qualified path".into()),
            },
            Expr::MethodCall(call) if call.args.is_empty() => {
                let values = self.method(&call.receiver, &call.method.to_string())?;
                values
                    .into_iter()
                    .map(|(shape, when)| match shape {
                        Shape::Text(text) => Ok(Cand { text, when }),
                        Shape::Tuple(_) => Err(format!("`{}` gives a tuple", call.method)),
                    })
                    .collect()
            }
            Expr::Match(m) => {
                let arms = each_arm(m, |body| Ok(self.resolve(body)?.into_iter().map(|c| (c.text, c.when)).collect()))?;
                Ok(arms.into_iter().map(|(text, when)| Cand { text, when }).collect())
            }
            _ => Err(format!(
                "`{}` is not a literal, a format!, a const or a binding of one",
                expr.span().source_text().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ")
            )),
        }
    }

    /// A tuple's rows: each element's text (if a literal), and when.
    fn resolve_tuple(&self, expr: &Expr) -> Result<Vec<Row>, String> {
        match tail(expr) {
            Expr::Tuple(t) => Ok(vec![(t.elems.iter().map(string_literal).collect(), When::new())]),
            Expr::Match(m) => each_arm(m, |body| self.resolve_tuple(body)),
            Expr::MethodCall(call) if call.args.is_empty() => self
                .method(&call.receiver, &call.method.to_string())?
                .into_iter()
                .map(|(shape, when)| match shape {
                    Shape::Tuple(row) => Ok((row, when)),
                    Shape::Text(_) => Err(format!("`{}` gives no tuple", call.method)),
                })
                .collect(),
            _ => Err("a tuple from something else than a tuple, a match or an enum method".into()),
        }
    }

    fn format(&self, mac: &syn::Macro) -> Resolved {
        let args = macro_exprs(mac).ok_or("a format! this test cannot parse")?;
        let template = args.first().and_then(string_literal).ok_or("a format! without a literal template")?;
        let mut named = HashMap::new();
        let mut positional = Vec::new();
        for arg in &args[1..] {
            match arg {
                Expr::Assign(a) => match &*a.left {
                    Expr::Path(p) if p.path.get_ident().is_some() => {
                        named.insert(p.path.segments[0].ident.to_string(), &*a.right);
                    }
                    _ => return Err("a format! argument this test cannot read".into()),
                },
                e => positional.push(e),
            }
        }
        let mut out = vec![Cand { text: String::new(), when: When::new() }];
        let mut next = 0;
        let mut chars = template.chars().peekable();
        let mut literal = String::new();
        while let Some(c) = chars.next() {
            match (c, chars.peek()) {
                ('{', Some('{')) | ('}', Some('}')) => {
                    chars.next();
                    literal.push(c);
                }
                ('{', _) => {
                    let mut name = String::new();
                    for c in chars.by_ref() {
                        if c == '}' {
                            break;
                        }
                        name.push(c);
                    }
                    if name.contains(':') {
                        return Err(format!("`{{{name}}}`: a format spec in SQL"));
                    }
                    let values = if name.is_empty() {
                        next += 1;
                        self.resolve(positional.get(next - 1).ok_or("a missing format! argument")?)?
                    } else if let Ok(index) = name.parse::<usize>() {
                        self.resolve(positional.get(index).ok_or("a missing format! argument")?)?
                    } else if let Some(e) = named.get(&name) {
                        self.resolve(e)?
                    } else {
                        self.lookup(&name)?
                    };
                    let mut joined = Vec::new();
                    for partial in &out {
                        for value in &values {
                            if let Some(when) = and(&partial.when, &value.when) {
                                joined.push(Cand { text: format!("{}{literal}{}", partial.text, value.text), when });
                            }
                        }
                    }
                    literal.clear();
                    out = joined;
                }
                _ => literal.push(c),
            }
        }
        Ok(out.into_iter().map(|c| Cand { text: c.text + &literal, when: c.when }).collect())
    }

    fn bind(&mut self, pat: &Pat, value: Option<&Expr>) {
        let pat = match pat {
            Pat::Type(t) => &*t.pat,
            p => p,
        };
        let bound: Vec<(String, Resolved)> = match (pat, value) {
            (Pat::Ident(i), Some(e)) if i.subpat.is_none() => vec![(i.ident.to_string(), self.resolve(e))],
            (Pat::Tuple(t), Some(e)) => {
                let rows = self.resolve_tuple(e);
                t.elems
                    .iter()
                    .enumerate()
                    .flat_map(|(index, p)| match p {
                        Pat::Ident(i) if i.subpat.is_none() => {
                            let values = rows.clone().and_then(|rows| {
                                rows.into_iter()
                                    .map(|(row, when)| {
                                        let text = row.get(index).cloned().flatten().ok_or("not a literal in every arm")?;
                                        Ok(Cand { text, when })
                                    })
                                    .collect()
                            });
                            vec![(i.ident.to_string(), values)]
                        }
                        p => bound_names(p).into_iter().map(|n| (n, Err("bound by a pattern".to_owned()))).collect(),
                    })
                    .collect()
            }
            (p, _) => bound_names(p).into_iter().map(|n| (n, Err("bound by a pattern".to_owned()))).collect(),
        };
        if let Some(scope) = self.scopes.last_mut() {
            scope.extend(bound);
        }
    }

    fn statement(&mut self, sql: &Expr) {
        self.out.calls += 1;
        let line = line_of(sql);
        let context: When = self.when.iter().fold(When::new(), |mut w, (key, allow)| {
            let joined = w.get(key).map_or(Some(allow.clone()), |held| held.and(allow));
            // A contradiction in the context: code no variant reaches.
            w.insert(key.clone(), joined.unwrap_or(Allow::Only(BTreeSet::new())));
            w
        });
        match self.resolve(sql) {
            Ok(cands) => {
                for cand in cands {
                    let Some(when) = and(&cand.when, &context) else { continue };
                    let dialect = when.iter().find(|(key, _)| key.ends_with(".dialect()")).map(|(_, allow)| allow);
                    for (postgres, variant) in [(false, "Sqlite"), (true, "Postgres")] {
                        if dialect.is_none_or(|allow| allow.admits(variant)) {
                            self.out.statements.push(Statement {
                                file: self.file.to_owned(),
                                line,
                                function: self.function.clone(),
                                postgres,
                                sql: cand.text.clone(),
                            });
                        }
                    }
                }
            }
            Err(why) => self.out.unresolved.push((self.file.to_owned(), self.function.clone(), line, why)),
        }
    }

    fn function(&mut self, attrs: &[syn::Attribute], sig: &syn::Signature, body: &syn::Block) {
        if is_cfg_test(attrs) {
            return;
        }
        let params = sig
            .inputs
            .iter()
            .map(|input| match input {
                syn::FnArg::Typed(t) => Some(bound_names(&t.pat).join(",")),
                syn::FnArg::Receiver(_) => None,
            })
            .collect::<Option<Vec<_>>>();
        let saved = (
            std::mem::replace(&mut self.function, sig.ident.to_string()),
            std::mem::replace(&mut self.params, params),
            std::mem::take(&mut self.scopes),
            std::mem::take(&mut self.when),
        );
        self.visit_block(body);
        (self.function, self.params, self.scopes, self.when) = saved;
    }

    fn within(&mut self, key: String, allow: Allow, pat: Option<&Pat>, visit: impl FnOnce(&mut Self)) {
        self.when.push((key, allow));
        self.scopes.push(HashMap::new());
        if let Some(pat) = pat {
            self.bind(pat, None);
        }
        visit(self);
        self.scopes.pop();
        self.when.pop();
    }
}

impl<'ast> Visit<'ast> for Walker<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if !is_cfg_test(&m.attrs) {
            visit::visit_item_mod(self, m);
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.function(&f.attrs, &f.sig, &f.block);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.function(&f.attrs, &f.sig, &f.block);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(body) = &f.default {
            self.function(&f.attrs, &f.sig, body);
        }
    }

    fn visit_block(&mut self, b: &'ast syn::Block) {
        self.scopes.push(HashMap::new());
        visit::visit_block(self, b);
        self.scopes.pop();
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        if let Some(init) = &local.init {
            self.visit_expr(&init.expr);
            if let Some((_, diverge)) = &init.diverge {
                self.visit_expr(diverge);
            }
        }
        self.bind(&local.pat, local.init.as_ref().map(|i| &*i.expr));
    }

    fn visit_expr_closure(&mut self, c: &'ast syn::ExprClosure) {
        self.scopes.push(HashMap::new());
        for input in &c.inputs {
            self.bind(input, None);
        }
        self.visit_expr(&c.body);
        self.scopes.pop();
    }

    fn visit_expr_match(&mut self, m: &'ast syn::ExprMatch) {
        self.visit_expr(&m.expr);
        let key = key_of(&m.expr);
        let allows = arm_allows(&m.arms.iter().map(|a| variants(&a.pat)).collect::<Vec<_>>());
        for (arm, allow) in m.arms.iter().zip(allows) {
            self.within(key.clone(), allow, Some(&arm.pat), |w| {
                if let Some((_, guard)) = &arm.guard {
                    w.visit_expr(guard);
                }
                w.visit_expr(&arm.body);
            });
        }
    }

    fn visit_expr_if(&mut self, i: &'ast syn::ExprIf) {
        self.visit_expr(&i.cond);
        // `if x == E::V` (or `!=`): each branch for its variants.
        let tested = match &*i.cond {
            Expr::Binary(b) => match (&b.op, &*b.right) {
                (syn::BinOp::Eq(_) | syn::BinOp::Ne(_), Expr::Path(p)) if p.path.segments.len() > 1 => p
                    .path
                    .segments
                    .last()
                    .map(|v| (key_of(&b.left), BTreeSet::from([v.ident.to_string()]), matches!(b.op, syn::BinOp::Ne(_)))),
                _ => None,
            },
            _ => None,
        };
        let (then_allow, else_allow) = match &tested {
            Some((_, set, false)) => (Allow::Only(set.clone()), Allow::Not(set.clone())),
            Some((_, set, true)) => (Allow::Not(set.clone()), Allow::Only(set.clone())),
            None => (Allow::Not(BTreeSet::new()), Allow::Not(BTreeSet::new())),
        };
        let key = tested.map_or_else(|| "if".to_owned(), |(key, _, _)| key);
        self.within(key.clone(), then_allow, None, |w| w.visit_block(&i.then_branch));
        if let Some((_, otherwise)) = &i.else_branch {
            self.within(key, else_allow, None, |w| w.visit_expr(otherwise));
        }
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        if METHODS.iter().any(|m| call.method == m) && call.args.len() == 2 {
            self.statement(&call.args[0]);
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        // `Tx::query_one(tx, sql, params)`.
        if let Expr::Path(p) = &*call.func {
            let is_tx_method = p.path.segments.len() > 1 && p.path.segments.last().is_some_and(|s| METHODS.iter().any(|m| s.ident == m));
            if is_tx_method && call.args.len() == 3 {
                self.statement(&call.args[1]);
            }
        }
        visit::visit_expr_call(self, call);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        match macro_exprs(mac) {
            Some(exprs) => exprs.iter().for_each(|e| self.visit_expr(e)),
            None if mentions_method(mac.tokens.clone()) => self.out.unresolved.push((
                self.file.to_owned(),
                self.function.clone(),
                line_of(mac),
                "a macro this test cannot parse names a statement method".into(),
            )),
            None => {}
        }
    }
}

/// The statements of `areas` ((file, source)); enum methods from `library`.
fn extract(areas: &[(String, String)], library: &[(String, String)]) -> Extracted {
    let parse = |(name, text): &(String, String)| syn::parse_file(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let areas: Vec<(&str, syn::File)> = areas.iter().map(|a| (a.0.as_str(), parse(a))).collect();
    let mut cx = Context::default();
    for source in library {
        Methods(&mut cx.methods).visit_file(&parse(source));
    }
    for (file, parsed) in &areas {
        Declarations { file, cx: &mut cx }.visit_file(parsed);
    }
    let mut out = Extracted::default();
    for (file, parsed) in &areas {
        let mut walker =
            Walker { cx: &cx, file, function: String::new(), params: None, scopes: Vec::new(), when: Vec::new(), out: &mut out };
        walker.visit_file(parsed);
    }
    out.statements.sort();
    out.statements.dedup();
    out
}

fn sources(dir: &Path, recurse: bool, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() && recurse {
            sources(&path, true, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The store's statements, every call read (or listed in [`UNRESOLVED`]).
fn store_statements() -> Vec<Statement> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut areas = Vec::new();
    sources(&src.join("store"), false, &mut areas);
    areas.retain(|(name, _)| !NOT_AREAS.iter().any(|(n, _)| n == name));
    let mut library = Vec::new();
    sources(&src, true, &mut library);
    let extracted = extract(&areas, &library);

    let allowed = |(file, function, ..): &&(String, String, usize, String)| UNRESOLVED.iter().any(|(f, n, _)| f == file && n == function);
    let unread: Vec<String> = extracted
        .unresolved
        .iter()
        .filter(|u| !allowed(u))
        .map(|(file, function, line, why)| format!("{file}:{line} ({function}): {why}"))
        .collect();
    assert!(unread.is_empty(), "statements this test cannot read (make them readable, or list them in UNRESOLVED):\n{}", unread.join("\n"));
    for (file, function, why) in UNRESOLVED {
        assert!(
            extracted.unresolved.iter().any(|(f, n, ..)| f == file && n == function),
            "UNRESOLVED lists {file} {function} ({why}), which is read now or gone: remove it"
        );
    }
    assert!(
        extracted.calls * 10 >= CALLS_WHEN_WRITTEN * 9,
        "{} calls found, {CALLS_WHEN_WRITTEN} when this test was written: the reader misses statements",
        extracted.calls
    );
    extracted.statements
}

fn report(dialect: Dialect, statements: &[Statement], failed: &[String], started: Instant) {
    let sites = statements.iter().map(|s| (&s.file, s.line)).collect::<BTreeSet<_>>().len();
    println!(
        "{dialect:?}: {} statements prepared ({sites} calls), {} failed, in {:?}",
        statements.len() - failed.len(),
        failed.len(),
        started.elapsed()
    );
    assert!(failed.is_empty(), "statements {dialect:?} refuses:\n{}", failed.join("\n"));
}

#[tokio::test]
async fn every_statement_prepares_on_sqlite() {
    let started = Instant::now();
    let statements: Vec<Statement> = store_statements().into_iter().filter(|s| s.dialect() == Dialect::Sqlite).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let options = StoreOptions::new(&crate::sealed::SecretsKey::sandbox());
    drop(super::sqlite::SqliteStore::open(&format!("sqlite://{}", path.display()), &options).await.unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let failed: Vec<String> = statements.iter().filter_map(|s| conn.prepare(&s.sql).err().map(|e| s.failure(&e))).collect();
    report(Dialect::Sqlite, &statements, &failed, started);
}

#[tokio::test]
async fn every_statement_prepares_on_postgres() {
    let started = Instant::now();
    let statements: Vec<Statement> = store_statements().into_iter().filter(|s| s.dialect() == Dialect::Postgres).collect();
    let Some(url) = super::suite::postgres_url().await else { return };
    let options = StoreOptions::new(&crate::sealed::SecretsKey::sandbox());
    drop(super::postgres::PgStore::open(&url, &options).await.unwrap());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let mut failed = Vec::new();
    for s in &statements {
        if let Err(e) = client.prepare(&s.sql).await {
            let error = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned());
            failed.push(s.failure(&error));
        }
    }
    report(Dialect::Postgres, &statements, &failed, started);
}

#[test]
fn the_reader_resolves_literals_formats_and_matches() {
    let area = r#"
        const COLUMNS: &str = "a, b";
        async fn op(tx: &impl Tx, chain: Chain, scope: Scope) -> StoreResult<()> {
            tx.execute("DELETE FROM t WHERE a = $1", &[]).await?;
            tx.query(&format!("SELECT {COLUMNS} FROM t"), &[]).await?;
            let lock = match tx.dialect() {
                Dialect::Sqlite => "SELECT 1",
                Dialect::Postgres => "SELECT 1 FOR UPDATE",
            };
            tx.query_opt(lock, &[]).await?;
            let table = chain.table();
            let columns = match chain {
                Chain::Audit => "x",
                Chain::Evidence => "y",
            };
            tx.query(&format!("SELECT {columns} FROM {table}"), &[]).await?;
            if tx.dialect() == Dialect::Postgres {
                tx.execute("SET x = 1", &[]).await?;
            }
            let (join, id) = match scope { Scope::User(id) => ("", id), Scope::Company(id) => ("JOIN u", id) };
            run!(self, |tx| async { sql::Tx::query_one(tx, &format!("SELECT 2 {join}"), &[]).await });
            tx.execute(id, &[]).await?;
            Ok(())
        }
    "#;
    let library = r#"
        impl Chain {
            fn table(self) -> &'static str {
                match self {
                    Chain::Audit => "audit",
                    Chain::Evidence => "evidence",
                }
            }
        }
    "#;
    let extracted = extract(&[("a.rs".into(), area.into())], &[("chain.rs".into(), library.into())]);
    let read: Vec<(usize, &str, bool)> = extracted.statements.iter().map(|s| (s.line, s.sql.as_str(), s.postgres)).collect();
    assert_eq!(
        read,
        [
            (4, "DELETE FROM t WHERE a = $1", false),
            (4, "DELETE FROM t WHERE a = $1", true),
            (5, "SELECT a, b FROM t", false),
            (5, "SELECT a, b FROM t", true),
            (10, "SELECT 1", false),
            (10, "SELECT 1 FOR UPDATE", true),
            (16, "SELECT x FROM audit", false),
            (16, "SELECT y FROM evidence", false),
            (16, "SELECT x FROM audit", true),
            (16, "SELECT y FROM evidence", true),
            (18, "SET x = 1", true),
            (21, "SELECT 2 ", false),
            (21, "SELECT 2 JOIN u", false),
            (21, "SELECT 2 ", true),
            (21, "SELECT 2 JOIN u", true),
        ]
    );
    assert_eq!(extracted.calls, 7);
    assert_eq!(extracted.unresolved.len(), 1, "{:?}", extracted.unresolved);
    assert_eq!(extracted.unresolved[0].2, 22);
    assert!(extracted.unresolved[0].3.contains("`id`"), "{:?}", extracted.unresolved);
}
