//! Recursive-descent parser with Python's precedence. Names are resolved and call arities
//! checked here, so most mistakes are reported before any evaluation. Nesting is bounded
//! before each recursion ([`MAX_DEPTH`]); chains of same-precedence operators are flat lists,
//! so the tree's depth is the input's nesting, not its length.

use super::funcs::{self, FnDef};
use super::lexer::{Tok, Token};
use super::value::Value;
use super::{Var, MAX_DEPTH};

/// A parse error: column and message.
pub(crate) type ParseError = (usize, String);

/// Arithmetic operators of the `+ -` and `* / // %` levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ArOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    In,
    NotIn,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum UnOp {
    Neg,
    Pos,
    Not,
}

/// An expression node and the column it reports errors at.
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub col: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Lit(Value),
    Var(Var),
    List(Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    /// `base ** exponent` (right-associative: the exponent may itself be a power).
    Pow(Box<Expr>, Box<Expr>),
    /// `first op e1 op e2 ...`, left to right; each op with its column.
    Arith(Box<Expr>, Vec<(ArOp, usize, Expr)>),
    /// `first op e1 op e2 ...` as a Python chain (`a < b < c` is `a < b and b < c`).
    Compare(Box<Expr>, Vec<(CmpOp, usize, Expr)>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// `then if cond else otherwise`.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// A call with positional arguments and keyword arguments (`rel_tol=...`).
    Call(&'static FnDef, Vec<Expr>, Vec<(&'static str, Expr)>),
}

impl Kind {
    /// Whether a string literal appears anywhere in this tree.
    pub(crate) fn has_string(&self) -> bool {
        let any = |v: &[Expr]| v.iter().any(|e| e.kind.has_string());
        match self {
            Kind::Lit(Value::Str(_)) => true,
            Kind::Lit(_) | Kind::Var(_) => false,
            Kind::List(v) | Kind::And(v) | Kind::Or(v) => any(v),
            Kind::Unary(_, e) => e.kind.has_string(),
            Kind::Pow(a, b) => a.kind.has_string() || b.kind.has_string(),
            Kind::Arith(a, r) => a.kind.has_string() || r.iter().any(|x| x.2.kind.has_string()),
            Kind::Compare(a, r) => a.kind.has_string() || r.iter().any(|x| x.2.kind.has_string()),
            Kind::Cond(a, b, c) => [a, b, c].iter().any(|e| e.kind.has_string()),
            Kind::Call(_, a, k) => any(a) || k.iter().any(|x| x.1.kind.has_string()),
        }
    }

    /// Adds the variables this tree reads to `out`.
    pub(crate) fn vars(&self, out: &mut Vec<Var>) {
        let all = |v: &[Expr], out: &mut Vec<Var>| v.iter().for_each(|e| e.kind.vars(out));
        match self {
            Kind::Var(v) => {
                if !out.contains(v) {
                    out.push(*v)
                }
            }
            Kind::Lit(_) => {}
            Kind::List(v) | Kind::And(v) | Kind::Or(v) => all(v, out),
            Kind::Unary(_, e) => e.kind.vars(out),
            Kind::Pow(a, b) => {
                a.kind.vars(out);
                b.kind.vars(out);
            }
            Kind::Arith(a, r) => {
                a.kind.vars(out);
                r.iter().for_each(|x| x.2.kind.vars(out));
            }
            Kind::Compare(a, r) => {
                a.kind.vars(out);
                r.iter().for_each(|x| x.2.kind.vars(out));
            }
            Kind::Cond(a, b, c) => [a, b, c].iter().for_each(|e| e.kind.vars(out)),
            Kind::Call(_, a, k) => {
                all(a, out);
                k.iter().for_each(|x| x.1.kind.vars(out));
            }
        }
    }
}

/// Parses a whole token list (ending with `End`) into one expression.
pub(crate) fn parse(tokens: &[Token]) -> Result<Expr, ParseError> {
    let mut p = Parser {
        toks: tokens,
        pos: 0,
        depth: 0,
    };
    if matches!(p.peek(), Tok::End) {
        return Err((1, "the schedule is empty: expected an expression".into()));
    }
    let e = p.expr()?;
    match p.peek() {
        Tok::End => Ok(e),
        Tok::Op(",") => Err((
            p.col(),
            "unexpected `,`: tuples are not supported; write a list [a, b]".into(),
        )),
        _ => Err((
            p.col(),
            format!(
                "unexpected {} after a complete expression: expected an operator or the end",
                p.describe()
            ),
        )),
    }
}

struct Parser<'a> {
    toks: &'a [Token],
    pos: usize,
    depth: usize,
}

const RESERVED: [&str; 27] = [
    "None", "lambda", "for", "while", "import", "from", "def", "class", "return", "is", "with",
    "as", "yield", "await", "async", "del", "global", "nonlocal", "pass", "raise", "try", "except",
    "finally", "assert", "break", "continue", "elif",
];

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.pos + k).min(self.toks.len() - 1)].tok
    }

    fn col(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].col
    }

    fn bump(&mut self) {
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Name(n) if n == kw)
    }

    fn describe(&self) -> String {
        match self.peek() {
            Tok::Int(i) => format!("number `{i}`"),
            Tok::Float(f) => format!("number `{}`", super::value::float_repr(*f)),
            Tok::Str(_) => "a string".into(),
            Tok::Name(n) => format!("`{n}`"),
            Tok::Op(o) => format!("`{o}`"),
            Tok::End => "the end of the schedule".into(),
        }
    }

    fn expect_op(&mut self, op: &str, what: &str) -> Result<(), ParseError> {
        if self.is_op(op) {
            self.bump();
            Ok(())
        } else {
            Err((
                self.col(),
                format!("expected {what}, found {}", self.describe()),
            ))
        }
    }

    /// Enters one nesting level, refusing past [`MAX_DEPTH`] before any recursion.
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err((
                self.col(),
                format!("expression nested too deeply: at most {MAX_DEPTH} levels of brackets, calls, unary operators, powers and conditionals"),
            ));
        }
        Ok(())
    }

    /// expr := or_test ['if' or_test 'else' expr]
    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let col = self.col();
        let then = self.or_test()?;
        let e = if self.is_kw("if") {
            self.bump();
            let cond = self.or_test()?;
            if !self.is_kw("else") {
                return Err((
                    self.col(),
                    format!(
                        "expected `else` of `x if condition else y`, found {}",
                        self.describe()
                    ),
                ));
            }
            self.bump();
            let other = self.expr()?;
            Expr {
                col,
                kind: Kind::Cond(Box::new(then), Box::new(cond), Box::new(other)),
            }
        } else {
            then
        };
        self.depth -= 1;
        Ok(e)
    }

    fn or_test(&mut self) -> Result<Expr, ParseError> {
        self.bool_chain("or")
    }

    fn bool_chain(&mut self, kw: &str) -> Result<Expr, ParseError> {
        let col = self.col();
        let first = if kw == "or" {
            self.bool_chain("and")?
        } else {
            self.not_test()?
        };
        if !self.is_kw(kw) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.is_kw(kw) {
            self.bump();
            items.push(if kw == "or" {
                self.bool_chain("and")?
            } else {
                self.not_test()?
            });
        }
        let kind = if kw == "or" {
            Kind::Or(items)
        } else {
            Kind::And(items)
        };
        Ok(Expr { col, kind })
    }

    fn not_test(&mut self) -> Result<Expr, ParseError> {
        if self.is_kw("not") {
            let col = self.col();
            self.bump();
            self.enter()?;
            let inner = self.not_test()?;
            self.depth -= 1;
            return Ok(Expr {
                col,
                kind: Kind::Unary(UnOp::Not, Box::new(inner)),
            });
        }
        self.comparison()
    }

    fn cmp_op(&self) -> Option<(CmpOp, usize)> {
        Some(match self.peek() {
            Tok::Op("<") => (CmpOp::Lt, 1),
            Tok::Op("<=") => (CmpOp::Le, 1),
            Tok::Op(">") => (CmpOp::Gt, 1),
            Tok::Op(">=") => (CmpOp::Ge, 1),
            Tok::Op("==") => (CmpOp::Eq, 1),
            Tok::Op("!=") => (CmpOp::Ne, 1),
            Tok::Name(n) if n == "in" => (CmpOp::In, 1),
            Tok::Name(n) if n == "not" && matches!(self.peek_at(1), Tok::Name(m) if m == "in") => {
                (CmpOp::NotIn, 2)
            }
            _ => return None,
        })
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let col = self.col();
        let first = self.arith()?;
        let mut rest = Vec::new();
        loop {
            if self.is_kw("is") {
                return Err((
                    self.col(),
                    "`is` is not supported: compare values with == or !=".into(),
                ));
            }
            if self.is_op("=") {
                return Err((
                    self.col(),
                    "unexpected `=`: compare with `==`; assignments are not supported".into(),
                ));
            }
            let Some((op, n)) = self.cmp_op() else { break };
            let op_col = self.col();
            for _ in 0..n {
                self.bump();
            }
            rest.push((op, op_col, self.arith()?));
        }
        if rest.is_empty() {
            return Ok(first);
        }
        Ok(Expr {
            col,
            kind: Kind::Compare(Box::new(first), rest),
        })
    }

    fn arith(&mut self) -> Result<Expr, ParseError> {
        self.arith_level(false)
    }

    /// `term (('+'|'-') term)*` when `!mul`, `factor (('*'|'/'|'//'|'%') factor)*` when `mul`.
    fn arith_level(&mut self, mul: bool) -> Result<Expr, ParseError> {
        let col = self.col();
        let first = if mul {
            self.factor()?
        } else {
            self.arith_level(true)?
        };
        let mut rest = Vec::new();
        loop {
            let op = match (mul, self.peek()) {
                (false, Tok::Op("+")) => ArOp::Add,
                (false, Tok::Op("-")) => ArOp::Sub,
                (true, Tok::Op("*")) => ArOp::Mul,
                (true, Tok::Op("/")) => ArOp::Div,
                (true, Tok::Op("//")) => ArOp::FloorDiv,
                (true, Tok::Op("%")) => ArOp::Mod,
                (_, Tok::Op(o @ ("&" | "|" | "^" | "<<" | ">>" | "@"))) => {
                    return Err((
                        self.col(),
                        format!(
                        "operator `{o}` is not supported: expected + - * / // % ** or a comparison"
                    ),
                    ))
                }
                _ => break,
            };
            let op_col = self.col();
            self.bump();
            let operand = if mul {
                self.factor()?
            } else {
                self.arith_level(true)?
            };
            rest.push((op, op_col, operand));
        }
        if rest.is_empty() {
            return Ok(first);
        }
        Ok(Expr {
            col,
            kind: Kind::Arith(Box::new(first), rest),
        })
    }

    /// factor := ('+'|'-') factor | power
    fn factor(&mut self) -> Result<Expr, ParseError> {
        let col = self.col();
        let op = match self.peek() {
            Tok::Op("-") => UnOp::Neg,
            Tok::Op("+") => UnOp::Pos,
            Tok::Op("~") => {
                return Err((col, "operator `~` is not supported: expected - or +".into()))
            }
            _ => return self.power(),
        };
        self.bump();
        self.enter()?;
        let inner = self.factor()?;
        self.depth -= 1;
        Ok(Expr {
            col,
            kind: Kind::Unary(op, Box::new(inner)),
        })
    }

    /// power := atom ['**' factor]
    fn power(&mut self) -> Result<Expr, ParseError> {
        let base = self.atom()?;
        if !self.is_op("**") {
            return Ok(base);
        }
        let col = self.col();
        self.bump();
        self.enter()?;
        let exp = self.factor()?;
        self.depth -= 1;
        Ok(Expr {
            col,
            kind: Kind::Pow(Box::new(base), Box::new(exp)),
        })
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        let col = self.col();
        let tok = self.peek().clone();
        let e = match tok {
            Tok::Int(i) => {
                self.bump();
                Kind::Lit(Value::Int(i))
            }
            Tok::Float(f) => {
                self.bump();
                Kind::Lit(Value::Float(f))
            }
            Tok::Str(s) => {
                self.bump();
                // Adjacent literals concatenate, as in Python.
                let mut s = s;
                while let Tok::Str(t) = self.peek() {
                    s.push_str(t);
                    self.bump();
                    if s.len() > super::MAX_ITEMS {
                        return Err((
                            col,
                            format!("string longer than {} characters", super::MAX_ITEMS),
                        ));
                    }
                }
                Kind::Lit(Value::Str(s))
            }
            Tok::Op("(") => {
                self.bump();
                if self.is_op(")") {
                    return Err((
                        col,
                        "empty `()`: tuples are not supported; expected an expression".into(),
                    ));
                }
                let inner = self.expr()?;
                if self.is_op(",") {
                    return Err((
                        self.col(),
                        "unexpected `,`: tuples are not supported; write a list [a, b]".into(),
                    ));
                }
                self.expect_op(")", "`)` to close the `(`")?;
                return Ok(inner);
            }
            Tok::Op("[") => {
                self.bump();
                self.enter()?;
                let items = self.items("]", "list")?;
                self.depth -= 1;
                Kind::List(items)
            }
            Tok::Name(name) => return self.name(name, col),
            Tok::End => {
                return Err((
                    col,
                    "the schedule ends here: expected a number, a name or `(`".into(),
                ))
            }
            Tok::Op(o) => {
                return Err((
                    col,
                    format!(
                    "unexpected `{o}`: expected a number, a variable, a function call, `(` or `[`"
                ),
                ))
            }
        };
        if self.is_op("(") || self.is_op("[") || self.is_op(".") {
            return Err((
                self.col(),
                format!("unexpected {} after a value: calls, indexing and attributes apply to names only (sin(x)); expected an operator", self.describe()),
            ));
        }
        Ok(Expr { col, kind: e })
    }

    /// Comma-separated expressions up to `close` (a trailing comma is allowed).
    fn items(&mut self, close: &str, what: &str) -> Result<Vec<Expr>, ParseError> {
        let mut items = Vec::new();
        loop {
            if self.is_op(close) {
                self.bump();
                return Ok(items);
            }
            items.push(self.expr()?);
            if self.is_kw("for") {
                return Err((
                    self.col(),
                    "comprehensions are not supported: write the list out".into(),
                ));
            }
            if self.is_op(",") {
                self.bump();
            } else if !self.is_op(close) {
                return Err((
                    self.col(),
                    format!(
                        "expected `,` or `{close}` in the {what}, found {}",
                        self.describe()
                    ),
                ));
            }
        }
    }

    fn name(&mut self, name: String, col: usize) -> Result<Expr, ParseError> {
        self.bump();
        let mut full = name.clone();
        let mut math_only = false;
        if self.is_op(".") {
            if name != "math" {
                return Err((
                    self.col(),
                    format!(
                        "attribute access is not supported (`{name}.`): only math.NAME is accepted"
                    ),
                ));
            }
            self.bump();
            let Tok::Name(attr) = self.peek().clone() else {
                return Err((self.col(), "expected a name after `math.`".into()));
            };
            self.bump();
            if self.is_op(".") {
                return Err((self.col(), "attribute access is not supported".into()));
            }
            full = attr;
            math_only = true;
        }
        let called = self.is_op("(");
        if !math_only {
            match full.as_str() {
                "True" | "False" => {
                    return Ok(Expr {
                        col,
                        kind: Kind::Lit(Value::Bool(full == "True")),
                    });
                }
                "if" | "else" | "and" | "or" | "not" | "in" => {
                    return Err((col, format!("unexpected `{full}`: expected a value")));
                }
                _ if RESERVED.contains(&full.as_str()) => {
                    return Err((col, format!("`{full}` is not supported in schedules: expected a number, a variable or a function call")));
                }
                _ => {}
            }
            if let Some(var) = Var::from_name(&full) {
                if called {
                    return Err((
                        self.col(),
                        format!("`{full}` is a variable, not a function"),
                    ));
                }
                return Ok(Expr {
                    col,
                    kind: Kind::Var(var),
                });
            }
        }
        if let Some(c) = funcs::constant(&full) {
            if called {
                return Err((
                    self.col(),
                    format!("`{full}` is a constant, not a function"),
                ));
            }
            return Ok(Expr {
                col,
                kind: Kind::Lit(Value::Float(c)),
            });
        }
        let Some(def) = funcs::lookup(&full, math_only) else {
            let hint = if math_only {
                format!("the math module has no `{full}`")
            } else if full == "math" {
                "`math` alone is not a value: write math.NAME, like math.sin(x)".to_string()
            } else if let Some(near) = nearest_name(&full) {
                format!("unknown name `{full}`: did you mean `{near}`?")
            } else {
                format!(
                    "unknown name `{full}`: expected a variable ({}), a constant (pi, e, tau, inf, nan) or a function (sin, max, round...)",
                    Var::NAMES.join(", ")
                )
            };
            return Err((col, hint));
        };
        if !called {
            return Err((
                self.col(),
                format!("`{full}` is a function: call it, like {full}(...)"),
            ));
        }
        let call_col = self.col();
        self.bump();
        self.enter()?;
        let mut args = Vec::new();
        let mut kwargs: Vec<(&'static str, Expr)> = Vec::new();
        loop {
            if self.is_op(")") {
                self.bump();
                break;
            }
            if let (Tok::Name(k), Tok::Op("=")) = (self.peek().clone(), self.peek_at(1)) {
                let kcol = self.col();
                let Some(kw) = def.kwargs.iter().find(|n| **n == k) else {
                    return Err((
                        kcol,
                        format!("{full}() has no keyword argument `{k}`{}", kw_hint(def)),
                    ));
                };
                if kwargs.iter().any(|(n, _)| n == kw) {
                    return Err((kcol, format!("keyword argument `{k}` given twice")));
                }
                self.bump();
                self.bump();
                kwargs.push((kw, self.expr()?));
            } else {
                if !kwargs.is_empty() {
                    return Err((
                        self.col(),
                        "a positional argument cannot follow a keyword argument".into(),
                    ));
                }
                if self.is_op("*") || self.is_op("**") {
                    return Err((
                        self.col(),
                        "argument unpacking (`*`, `**`) is not supported".into(),
                    ));
                }
                args.push(self.expr()?);
            }
            if self.is_kw("for") {
                return Err((
                    self.col(),
                    "generator expressions are not supported: pass a list".into(),
                ));
            }
            if self.is_op(",") {
                self.bump();
            } else if !self.is_op(")") {
                return Err((
                    self.col(),
                    format!(
                        "expected `,` or `)` in the call of {full}(), found {}",
                        self.describe()
                    ),
                ));
            }
        }
        self.depth -= 1;
        let n = args.len();
        if n < def.min || def.max.is_some_and(|m| n > m) {
            let want = match def.max {
                Some(m) if m == def.min => format!("{m}"),
                Some(m) => format!("{} to {m}", def.min),
                None => format!("at least {}", def.min),
            };
            let s = if def.max == Some(1) { "" } else { "s" };
            return Err((
                call_col,
                format!(
                    "{full}() takes {want} argument{s} ({}), {n} given",
                    def.signature
                ),
            ));
        }
        if self.is_op("(") || self.is_op("[") || self.is_op(".") {
            return Err((
                self.col(),
                format!(
                    "unexpected {} after a call: expected an operator",
                    self.describe()
                ),
            ));
        }
        Ok(Expr {
            col,
            kind: Kind::Call(def, args, kwargs),
        })
    }
}

fn kw_hint(def: &FnDef) -> String {
    if def.kwargs.is_empty() {
        String::new()
    } else {
        format!(" (it accepts {})", def.kwargs.join(", "))
    }
}

/// The known name closest to `name` (ignoring case; one edit away, two when both names have
/// six letters or more), for hints.
fn nearest_name(name: &str) -> Option<&'static str> {
    let lower = name.to_lowercase();
    let consts: [&'static str; 5] = ["pi", "e", "tau", "inf", "nan"];
    Var::NAMES
        .iter()
        .copied()
        .chain(consts)
        .chain(funcs::function_names())
        .map(|cand| (edit_distance(&lower, cand), cand))
        .filter(|(d, cand)| {
            *d <= if cand.len().min(lower.len()) >= 6 {
                2
            } else {
                1
            } && *d < cand.len()
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, cand)| cand)
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
