//! Schedules: the Python expression subset that Video Loopback users write for per-loop and
//! per-frame parameters (`0.3 if loop_i<4 else 1`, `max(0.1, 0.4-0.02*loop_i)`).
//!
//! A pure language — numbers, strings and lists; `+ - * / // % **`; comparisons and chains;
//! `and or not`; `x if c else y`; every function and constant of Python's `math` module plus
//! `abs bool float int len max min round str sum` — with Python's semantics, evaluated without
//! Python: no attribute access, no names but the four variables ([`Var`]), no loops, and hard
//! bounds on text length, nesting depth, evaluation steps and value size (see the `MAX_*`
//! constants). Integers are 64-bit; a result outside that range is an error rather than a
//! Python big integer.
//!
//! Errors — parse and evaluation alike — name the parameter and the column:
//! parse errors are [`Error::Parse`], evaluation errors [`Error::Evaluate`] (with the variable
//! values that caused them). [`Schedule::check_all`] evaluates a schedule for every loop and
//! frame up front, so a bad schedule fails before any frame is rendered.
//!
//! ```
//! use rotograph::schedule::{Schedule, Vars};
//! let s = Schedule::parse("denoising", "max(0.1, 0.4-0.02*loop_i)")?;
//! let v = Vars { loop_i: 3, image_i: 1, loop_n: 10, image_n: 100 };
//! assert!((s.eval_f64(&v)? - 0.34).abs() < 1e-12);
//! # Ok::<(), rotograph::Error>(())
//! ```

mod eval;
mod funcs;
mod lexer;
mod parser;
mod special;
mod value;

pub use funcs::function_names;
pub use value::{float_repr, Value};

use crate::{Error, Result};

/// Longest schedule text, in characters.
pub const MAX_LEN: usize = 4096;
/// Deepest nesting of brackets, calls, unary operators, powers and conditionals.
pub const MAX_DEPTH: usize = 64;
/// Most evaluation steps (one per node, plus one per item a list or string operation touches).
pub const MAX_STEPS: usize = 100_000;
/// Largest list (counting nested items) or string a schedule may build.
pub const MAX_ITEMS: usize = 10_000;

/// The variables a schedule can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// `loop_i`: the loop being rendered, 1-based.
    LoopI,
    /// `image_i`: the frame being rendered, 1-based.
    ImageI,
    /// `loop_n`: the number of loops.
    LoopN,
    /// `image_n`: the number of frames.
    ImageN,
}

impl Var {
    /// The variables' names as written in schedules.
    pub const NAMES: [&'static str; 4] = ["loop_i", "image_i", "loop_n", "image_n"];

    /// The variable called `name`.
    pub fn from_name(name: &str) -> Option<Var> {
        Some(match name {
            "loop_i" => Var::LoopI,
            "image_i" => Var::ImageI,
            "loop_n" => Var::LoopN,
            "image_n" => Var::ImageN,
            _ => return None,
        })
    }
}

/// Values of the variables for one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vars {
    /// The loop, 1-based.
    pub loop_i: i64,
    /// The frame, 1-based.
    pub image_i: i64,
    /// Number of loops.
    pub loop_n: i64,
    /// Number of frames.
    pub image_n: i64,
}

impl Vars {
    /// The value of `var`.
    pub fn get(&self, var: Var) -> i64 {
        match var {
            Var::LoopI => self.loop_i,
            Var::ImageI => self.image_i,
            Var::LoopN => self.loop_n,
            Var::ImageN => self.image_n,
        }
    }
}

impl std::fmt::Display for Vars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "loop_i={}, image_i={}, loop_n={}, image_n={}",
            self.loop_i, self.image_i, self.loop_n, self.image_n
        )
    }
}

/// What a schedule must produce, for [`Schedule::check_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Any value.
    Any,
    /// A finite number ([`Schedule::eval_f64`]).
    Number,
    /// A whole number ([`Schedule::eval_i64`]).
    Integer,
    /// A list of finite numbers, or one number, of the same length for every evaluation
    /// ([`Schedule::eval_list`]).
    List,
    /// A string ([`Schedule::eval_str`]).
    Text,
}

#[derive(Debug, Clone)]
enum Body {
    Expr(parser::Expr),
    /// A prompt given as plain text.
    Text(String),
}

/// A parsed schedule for one parameter.
#[derive(Debug, Clone)]
pub struct Schedule {
    param: String,
    text: String,
    body: Body,
    vars: Vec<Var>,
}

impl Schedule {
    /// Parses `text` as the schedule of the parameter `param` (named in errors).
    pub fn parse(param: &str, text: &str) -> Result<Schedule> {
        let root = parse_expr(param, text)?;
        let mut vars = Vec::new();
        root.kind.vars(&mut vars);
        Ok(Schedule {
            param: param.to_string(),
            text: text.to_string(),
            body: Body::Expr(root),
            vars,
        })
    }

    /// Parses a prompt schedule. The text is an expression when it parses as one and contains
    /// a string literal (`"a cat" if loop_i < 3 else "a dog"`); otherwise it is the prompt
    /// itself, verbatim (`a cat, masterpiece`). A text that starts with a quote but does not
    /// parse is reported as a parse error, since it was meant as an expression.
    pub fn parse_prompt(param: &str, text: &str) -> Result<Schedule> {
        match parse_expr(param, text) {
            Ok(root) if root.kind.has_string() => {
                let mut vars = Vec::new();
                root.kind.vars(&mut vars);
                Ok(Schedule {
                    param: param.to_string(),
                    text: text.to_string(),
                    body: Body::Expr(root),
                    vars,
                })
            }
            Err(e) if text.trim_start().starts_with(['"', '\'']) => Err(e),
            _ => Ok(Schedule {
                param: param.to_string(),
                text: text.to_string(),
                body: Body::Text(text.to_string()),
                vars: Vec::new(),
            }),
        }
    }

    /// The parameter's name.
    pub fn param(&self) -> &str {
        &self.param
    }

    /// The schedule's text as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the schedule reads `var` (a schedule that reads neither `loop_i` nor `image_i`
    /// is constant for a run).
    pub fn uses(&self, var: Var) -> bool {
        self.vars.contains(&var)
    }

    /// Whether this is a plain-text prompt rather than an expression.
    pub fn is_text(&self) -> bool {
        matches!(self.body, Body::Text(_))
    }

    fn eval_error(&self, column: usize, message: &str, vars: &Vars) -> Error {
        Error::Evaluate {
            what: format!("schedule `{}`", self.param),
            text: self.text.clone(),
            column,
            message: format!("{message} (with {vars})"),
        }
    }

    /// Evaluates the schedule.
    pub fn eval(&self, vars: &Vars) -> Result<Value> {
        match &self.body {
            Body::Text(t) => Ok(Value::Str(t.clone())),
            Body::Expr(root) => eval::eval(root, vars, &mut eval::Budget::new())
                .map_err(|(col, m)| self.eval_error(col, &m, vars)),
        }
    }

    fn type_error(&self, want: &str, got: &Value, vars: &Vars) -> Error {
        let mut shown = got.repr();
        if shown.chars().count() > 60 {
            shown = shown.chars().take(57).collect::<String>() + "...";
        }
        self.eval_error(
            1,
            &format!("expected {want}, got {} {shown}", got.type_name()),
            vars,
        )
    }

    /// Evaluates to a finite number (`bool`, `int` or `float`).
    pub fn eval_f64(&self, vars: &Vars) -> Result<f64> {
        let v = self.eval(vars)?;
        match v.as_f64() {
            Some(x) if x.is_finite() => Ok(x),
            _ => Err(self.type_error("a finite number", &v, vars)),
        }
    }

    /// Evaluates to a whole number: an `int`, or a `float` with no fractional part.
    pub fn eval_i64(&self, vars: &Vars) -> Result<i64> {
        let v = self.eval(vars)?;
        match &v {
            Value::Float(f) if f.fract() == 0.0 => {
                if let Ok(Value::Int(i)) = funcs::float_to_int(*f) {
                    return Ok(i);
                }
            }
            _ => {
                if let Some(i) = v.as_int() {
                    return Ok(i);
                }
            }
        }
        Err(self.type_error("a whole number", &v, vars))
    }

    /// Evaluates to a list of finite numbers; a single number is a one-item list.
    pub fn eval_list(&self, vars: &Vars) -> Result<Vec<f64>> {
        let v = self.eval(vars)?;
        let items = match &v {
            Value::List(l) => l.as_slice(),
            other => std::slice::from_ref(other),
        };
        items
            .iter()
            .map(|x| x.as_f64().filter(|f| f.is_finite()))
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| self.type_error("a list of finite numbers", &v, vars))
    }

    /// Evaluates to a string (prompt schedules).
    pub fn eval_str(&self, vars: &Vars) -> Result<String> {
        match self.eval(vars)? {
            Value::Str(s) => Ok(s),
            other => Err(self.type_error("a string", &other, vars)),
        }
    }

    /// Evaluates the schedule for every `loop_i` in 1..=`loop_n` and `image_i` in
    /// 1..=`image_n` (only the combinations it can tell apart: a schedule that does not read
    /// `image_i` is evaluated once per loop), checking the result against `expect`. Returns the
    /// first error.
    pub fn check_all(&self, loop_n: usize, image_n: usize, expect: Expect) -> Result<()> {
        let loops = if self.uses(Var::LoopI) {
            loop_n.max(1)
        } else {
            1
        };
        let images = if self.uses(Var::ImageI) {
            image_n.max(1)
        } else {
            1
        };
        let mut list_len = None;
        for loop_i in 1..=loops {
            for image_i in 1..=images {
                let vars = Vars {
                    loop_i: loop_i as i64,
                    image_i: image_i as i64,
                    loop_n: loop_n as i64,
                    image_n: image_n as i64,
                };
                match expect {
                    Expect::Any => drop(self.eval(&vars)?),
                    Expect::Number => drop(self.eval_f64(&vars)?),
                    Expect::Integer => drop(self.eval_i64(&vars)?),
                    Expect::Text => drop(self.eval_str(&vars)?),
                    Expect::List => {
                        let n = self.eval_list(&vars)?.len();
                        let first = *list_len.get_or_insert(n);
                        if n != first {
                            return Err(self.eval_error(
                                1,
                                &format!(
                                    "the list must have the same length every time: {first} items earlier, {n} here"
                                ),
                                &vars,
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn parse_expr(param: &str, text: &str) -> Result<parser::Expr> {
    let err = |column: usize, message: String| Error::Parse {
        what: format!("schedule `{param}`"),
        text: text.to_string(),
        column,
        message,
    };
    let n = text.chars().count();
    if n > MAX_LEN {
        return Err(err(
            MAX_LEN + 1,
            format!("schedule too long: at most {MAX_LEN} characters"),
        ));
    }
    let tokens = lexer::lex(text).map_err(|(c, m)| err(c, m))?;
    parser::parse(&tokens).map_err(|(c, m)| err(c, m))
}

/// Runs parsing and every kind of evaluation on arbitrary bytes and checks the invariants
/// that must hold for any input (no panic, errors render). The cargo-fuzz target in `fuzz/`
/// and the property tests call it.
pub fn fuzz_one(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let var_sets = [
        Vars {
            loop_i: 1,
            image_i: 1,
            loop_n: 1,
            image_n: 1,
        },
        Vars {
            loop_i: 3,
            image_i: 17,
            loop_n: 4,
            image_n: 120,
        },
        Vars {
            loop_i: 0,
            image_i: -5,
            loop_n: 0,
            image_n: 0,
        },
        Vars {
            loop_i: i64::MAX,
            image_i: i64::MIN,
            loop_n: i64::MAX,
            image_n: i64::MIN,
        },
    ];
    for parsed in [
        Schedule::parse("fuzz", &text),
        Schedule::parse_prompt("fuzz", &text),
    ] {
        match parsed {
            Err(e) => {
                let shown = e.to_string();
                assert!(shown.contains("schedule `fuzz`"), "{shown}");
            }
            Ok(s) => {
                for v in &var_sets {
                    if let Err(e) = s.eval(v) {
                        assert!(e.to_string().contains("schedule `fuzz`"));
                    }
                    let _ = s.eval_f64(v);
                    let _ = s.eval_i64(v);
                    let _ = s.eval_list(v);
                    let _ = s.eval_str(v);
                }
                let _ = s.check_all(2, 3, Expect::List);
            }
        }
    }
}
